"""Which parts of thoughtbank an install has: the client SDK always, the engine (mining, index,
serving, evaluation) with the ``cpu`` or ``gpu`` extra."""

from __future__ import annotations

import importlib.util

ENGINE_INSTALL = "pip install '.[cpu]' in a checkout (or '.[gpu]' for FAISS with CUDA)"
# One import name per engine requirement that the client SDK lacks.
ENGINE_MODULES = (
    "numpy",
    "sentence_transformers",
    "faiss",
    "sklearn",
    "pyarrow",
    "prometheus_client",
    "grpc_health",
    "mmh3",
    "rank_bm25",
)


class EngineNotInstalledError(RuntimeError):
    """Raised by a part that needs the engine in an install without it."""


def missing_engine_module() -> str | None:
    """The first engine requirement not installed, or ``None`` when the engine is complete."""
    return next((m for m in ENGINE_MODULES if importlib.util.find_spec(m) is None), None)


def require_engine(what: str) -> None:
    """Raise ``EngineNotInstalledError`` naming the extra to install when the engine is absent."""
    missing = missing_engine_module()
    if missing is not None:
        raise EngineNotInstalledError(
            f"{what} needs the thoughtbank engine, which is not installed (no module "
            f"{missing!r}): {ENGINE_INSTALL}"
        )


UI_INSTALL = "pip install '.[cpu,ui]' in a checkout"
# One import name per requirement of the ``ui`` extra (the template browser).
UI_MODULES = ("starlette", "jinja2", "uvicorn")


def require_ui(what: str) -> None:
    """Raise ``EngineNotInstalledError`` naming the ``ui`` extra when the browser's web
    libraries are absent."""
    missing = next((m for m in UI_MODULES if importlib.util.find_spec(m) is None), None)
    if missing is not None:
        raise EngineNotInstalledError(
            f"{what} needs the template browser's web libraries (no module {missing!r}): "
            f"{UI_INSTALL}"
        )
