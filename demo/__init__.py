"""The demo: a small hand-written multi-LLM log and a runner for the whole pipeline."""

from importlib.resources import files
from pathlib import Path


def demo_logs_path() -> Path:
    """The bundled demo log (4 tasks x 8 queries x 3 models, FusionBench schema)."""
    return Path(str(files(__name__) / "demo_logs.jsonl"))
