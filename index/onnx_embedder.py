"""The ``onnx`` embedding backend: onnxruntime, the ``tokenizers`` library and pooling in numpy.

The transformer is exported once from the sentence-transformers folder's own weights (in a
child process, ``onnx_export``: this process never imports torch or sentence-transformers),
quantized to int8 where asked, and cached under ``cache_dir()/onnx`` beside its sha256. A
cached file whose checksum fails is exported again; a missing onnxruntime, a folder that cannot
be exported or a file that will not load is a one-line ``EmbedderError`` naming the fix, never a
quiet switch to another backend whose vectors differ.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from thoughtbank.cli_common import DEFAULT_EMBED_BATCH_SIZE
from thoughtbank.files import sha256_file
from thoughtbank.index.embedder import (
    Embedder,
    EmbedderError,
    cache_dir,
    resolve_model,
    weights_file,
)
from thoughtbank.index.threads import default_threads

log = logging.getLogger("thoughtbank.index")

POOLING_MODES = ("mean", "cls")
DEFAULT_MAX_SEQ_LENGTH = 512


def onnx_cache_dir() -> Path:
    return cache_dir() / "onnx"


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One exporter per cached file at a time, across processes."""
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _export(model_dir: Path, out: Path, precision: str) -> None:
    command = [sys.executable, "-m", "thoughtbank.index.onnx_export", str(model_dir), str(out)]
    if precision == "int8":
        command.append("--int8")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.is_file():
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise EmbedderError(
            f"cannot export {model_dir} to ONNX ({lines[-1]}); use --backend torch for this model"
        )


def cached_onnx_model(model_dir: Path, precision: str) -> tuple[Path, str]:
    """(path, sha256) of the ONNX export of ``model_dir`` at ``precision``, exported on first
    use (atomically, and again when the cached file's checksum fails)."""
    weights = weights_file(model_dir)
    if weights is None:
        raise EmbedderError(
            f"{model_dir} has no model.safetensors or pytorch_model.bin to export to ONNX; "
            "use --backend torch for this model"
        )
    folder = onnx_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model_dir.name}-{sha256_file(weights)[:16]}-{precision}.onnx"
    checksum = path.with_suffix(".sha256")
    with _exclusive(path.with_suffix(".lock")):
        if path.is_file() and checksum.is_file():
            digest = sha256_file(path)
            if digest == checksum.read_text().strip():
                return path, digest
            log.warning("%s: checksum mismatch (altered or truncated); exporting it again", path)
        log.info("exporting %s to ONNX (%s), once", model_dir, precision)
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            _export(model_dir, staging, precision)
            digest = sha256_file(staging)
            checksum.unlink(missing_ok=True)
            os.replace(staging, path)
            _write_atomically(checksum, digest)
        finally:
            staging.unlink(missing_ok=True)
    return path, digest


def _write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with staging.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)


@dataclass(frozen=True)
class SentenceConfig:
    """What sentence-transformers' own config files say about tokenizing and pooling."""

    max_seq_length: int
    pooling: str
    dimension: int | None

    @classmethod
    def of(cls, model_dir: Path) -> SentenceConfig:
        sbert = _read_json(model_dir / "sentence_bert_config.json")
        pooling = _read_json(model_dir / "1_Pooling" / "config.json")
        mode = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
        other_modes = [
            key
            for key, on in pooling.items()
            if key.startswith("pooling_mode_") and on and key not in _POOLING_KEYS
        ]
        if other_modes:
            raise EmbedderError(
                f"{model_dir}: pooling {other_modes[0]} is not supported by the onnx backend "
                f"(it pools {' or '.join(POOLING_MODES)}); use --backend torch"
            )
        return cls(
            int(sbert.get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH)),
            mode,
            pooling.get("word_embedding_dimension"),
        )


_POOLING_KEYS = {"pooling_mode_mean_tokens", "pooling_mode_cls_token"}


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class _Runtime:
    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer, cutting at the model's sequence length
    counter: Any  # the same, uncut: for token budgets
    config: SentenceConfig
    input_names: frozenset[str]
    pad_id: int
    path: Path
    sha256: str


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise EmbedderError(
            "the onnx backend needs onnxruntime: pip install onnxruntime, or use --backend torch"
        ) from exc
    return onnxruntime


def _load_runtime(model_id: str, precision: str) -> _Runtime:
    ort = _import_onnxruntime()
    from tokenizers import Tokenizer

    model_dir = Path(resolve_model(model_id))
    if not model_dir.is_dir():
        raise EmbedderError(
            f"the onnx backend needs a local sentence-transformers folder, not {model_id!r}; "
            "pass its path, or use --backend torch"
        )
    if not (model_dir / "tokenizer.json").is_file():
        raise EmbedderError(f"{model_dir} has no tokenizer.json; use --backend torch")
    config = SentenceConfig.of(model_dir)
    path, digest = cached_onnx_model(model_dir, precision)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Its default is a thread per core even where this process has a share of them (a Ray actor).
    options.intra_op_num_threads = default_threads()
    # The arena keeps the peak of the longest batch ever seen (about 0.8 GiB for 32 texts of
    # 256 tokens) for the process's life; without it a server's RSS returns to its base.
    options.enable_cpu_mem_arena = False
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own unrelated exception types
        raise EmbedderError(
            f"{path}: onnxruntime cannot load it ({exc}); delete it to export it again"
        ) from exc
    counter = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    counter.no_truncation()
    counter.no_padding()
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(config.max_seq_length)
    tokenizer.no_padding()
    pad_id = tokenizer.token_to_id("[PAD]") or 0
    names = frozenset(i.name for i in session.get_inputs())
    return _Runtime(session, tokenizer, counter, config, names, pad_id, path, digest)


class OnnxEmbedder(Embedder):
    """The transformer on onnxruntime (fp32 or int8); tokenizing and pooling outside torch."""

    backend = "onnx"

    def __init__(
        self, model: str, precision: str = "fp32", batch_size: int = DEFAULT_EMBED_BATCH_SIZE
    ) -> None:
        super().__init__(model, precision)
        self.batch_size = batch_size

    @cached_property
    def _runtime(self) -> _Runtime:
        return _load_runtime(self.model_id, self.precision)

    @property
    def model_sha256(self) -> str:
        return self._runtime.sha256

    @property
    def model_path(self) -> Path:
        """The cached ONNX file this embedder runs."""
        return self._runtime.path

    def count_tokens(self, text: str) -> int:
        return len(self._runtime.counter.encode(text, add_special_tokens=False).ids)

    @cached_property
    def dimension(self) -> int:
        return self._runtime.config.dimension or int(self._embed_batch([[0]]).shape[1])

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        runtime = self._runtime
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids = [e.ids for e in runtime.tokenizer.encode_batch(list(texts))]
        # Length-sorted batches pad little; rows go back to the callers' order at the end.
        order = np.argsort([len(i) for i in ids], kind="stable")
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        starts = range(0, len(order), self.batch_size)
        for start in _progress(starts, show_progress):
            rows = order[start : start + self.batch_size]
            vectors[rows] = self._embed_batch([ids[r] for r in rows])
        return vectors

    def _embed_batch(self, ids: list[list[int]]) -> np.ndarray:
        runtime = self._runtime
        width = max(len(i) for i in ids)
        input_ids = np.full((len(ids), width), runtime.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, tokens in enumerate(ids):
            input_ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in runtime.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = runtime.session.run(None, feeds)[0]
        if runtime.config.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.asarray(pooled / norms, dtype=np.float32)


def _progress(starts: range, show: bool) -> Iterator[int]:
    if not show:
        yield from starts
        return
    from tqdm import tqdm

    yield from tqdm(starts, desc="embedding", unit="batch")
