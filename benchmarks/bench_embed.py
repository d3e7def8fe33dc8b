"""Embedding benchmark: every backend and precision side by side, and fastembed beside them.

Each combination runs in a child process of its own, one after the other, so that each RSS is
that of a process holding only that model and no runtime's threads compete with another's. A
child reports sentences/s at batch 1 and 32 on short real queries and at batch 32 on long texts,
the single-query p50, its RSS, and (torch fp32 and the default only) ``build_index``
templates/s; the parent compares every child's vectors of the same real queries with torch
fp32's. fastembed (ONNX) runs the default backend's exported file with the bundled model's
tokenizer: the same local model files, nothing from a hub.

Usage: ``python -m benchmarks.bench_embed [--quick]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import psutil

from benchmarks.common import percentile_ms, ratio, timed
from thoughtbank.index.embedder import resolve_backend

COMBINATIONS = (("torch", "fp32"), ("torch", "bf16"), ("onnx", "fp32"), ("onnx", "int8"))
FASTEMBED = ("fastembed", "fp32")
QUERIES_FILE = "fusionbench_14_task_queries.jsonl.gz"
SHORT_CHARS = 300
LONG_CHARS = 900
MIB = 2**20
TOKENIZER_FILES = (
    "tokenizer.json",
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
)


def _data_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return Path(os.environ.get("THOUGHTBANK_SHARED_DATA", default))


def real_texts(count: int) -> tuple[list[str], list[str]]:
    """(short queries, long texts) from the FusionBench query mix, ``count`` of each."""
    short: list[str] = []
    long: list[str] = []
    with gzip.open(_data_dir() / QUERIES_FILE, "rt", encoding="utf-8") as rows:
        for line in rows:
            query = json.loads(line)["query"]
            if len(query) < SHORT_CHARS and len(short) < count:
                short.append(query)
            elif len(query) >= LONG_CHARS and len(long) < count:
                long.append(query[: LONG_CHARS * 2])
            if len(short) == count and len(long) == count:
                break
    return short, long


def fastembed_encoder(folder: Path) -> Callable[[Sequence[str]], np.ndarray]:
    """fastembed on the default backend's ONNX file and the bundled tokenizer files."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    from thoughtbank.index import load_embedder
    from thoughtbank.index.embedder import bundled_model_dir
    from thoughtbank.index.onnx_embedder import OnnxEmbedder

    onnx = load_embedder()
    assert isinstance(onnx, OnnxEmbedder)
    model_dir = bundled_model_dir()
    for name in (
        "tokenizer.json",
        "config.json",
        "special_tokens_map.json",
        "tokenizer_config.json",
    ):
        (folder / name).symlink_to(model_dir / name)
    (folder / "model.onnx").symlink_to(onnx.model_path)
    TextEmbedding.add_custom_model(
        model="thoughtbank/all-MiniLM-L6-v2",
        pooling=PoolingType.MEAN,
        normalization=True,
        sources=ModelSource(hf="sentence-transformers/all-MiniLM-L6-v2"),
        dim=onnx.dimension,
        model_file="model.onnx",
    )
    model = TextEmbedding("thoughtbank/all-MiniLM-L6-v2", specific_model_path=str(folder))
    return lambda texts: np.asarray(list(model.embed(list(texts), batch_size=32)))


def _rate(encode: Callable[[Sequence[str]], np.ndarray], texts: list[str], batch: int) -> float:
    encode(texts[:batch])  # the first call at a shape is slow everywhere
    seconds, _ = timed(lambda: [encode(texts[i : i + batch]) for i in range(0, len(texts), batch)])
    return len(texts) / seconds


def _build_rate(embedder: object, texts: list[str], folder: Path) -> float:
    """``build_index`` templates/s over ``texts`` as source queries (embedding dominates)."""
    from thoughtbank.index import Embedder, build_index
    from thoughtbank.schema import ThoughtTemplate, template_id

    assert isinstance(embedder, Embedder)
    templates = [
        ThoughtTemplate(
            id=template_id("bench", text, "Task: solve it.", ("m",)),
            task="bench",
            text="Task: solve it.",
            source_query=text,
            source_models=("m",),
        )
        for text in texts
    ]
    seconds, _ = timed(lambda: build_index(templates, folder / "index", embedder))
    return len(templates) / seconds


def child(backend: str, precision: str, texts_file: Path, vectors_file: Path) -> dict[str, float]:
    """One combination's figures; its vectors of the reference queries go to ``vectors_file``."""
    data = json.loads(texts_file.read_text())
    short, long, reference = data["short"], data["long"], data["reference"]
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as scratch:
        embedder = None
        if backend == FASTEMBED[0]:
            encode = fastembed_encoder(Path(scratch))
        else:
            from thoughtbank.index import load_embedder

            embedder = load_embedder(backend=backend, precision=precision)
            encode = embedder.encode
        encode(short[:40])  # load, and see a few input lengths, as the server's warm-up does
        np.save(vectors_file, encode(reference))
        singles = [timed(lambda q=q: encode([q]))[0] for q in short[:64]]
        figures = {
            "short_b1": _rate(encode, short[:64], 1),
            "short_b32": _rate(encode, short, 32),
            "long_b32": _rate(encode, long, 32),
            "p50_ms": percentile_ms(singles, 50),
            "rss_mib": psutil.Process().memory_info().rss / MIB,
        }
        default = resolve_backend("auto", "auto")
        if embedder is not None and (backend, precision) in {("torch", "fp32"), default}:
            figures["build_per_s"] = _build_rate(embedder, reference, Path(scratch))
    return figures


def _in_child(name: str, precision: str, texts_file: Path, vectors_file: Path) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.bench_embed", "--child", name, precision]
    command += [str(texts_file), str(vectors_file)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def run(quick: bool) -> dict[str, float]:
    if not (_data_dir() / QUERIES_FILE).exists():
        print(f"skipped: {_data_dir() / QUERIES_FILE} is absent (set THOUGHTBANK_SHARED_DATA)")
        return {}
    short, long = real_texts(128 if quick else 512)
    reference_count = 256 if quick else 1_000
    reference, _ = real_texts(reference_count)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as folder:
        texts_file = Path(folder) / "texts.json"
        texts_file.write_text(json.dumps({"short": short, "long": long, "reference": reference}))
        vectors: dict[str, np.ndarray] = {}
        for backend, precision in (*COMBINATIONS, FASTEMBED):
            name = f"{backend}_{precision}"
            vectors_file = Path(folder) / f"{name}.npy"
            for key, value in _in_child(backend, precision, texts_file, vectors_file).items():
                figures[f"{name}_{key}"] = value
            vectors[name] = np.load(vectors_file)
    for name, found in vectors.items():
        figures[f"{name}_min_cosine"] = float(np.min(np.sum(found * vectors["torch_fp32"], axis=1)))
    default = "_".join(resolve_backend("auto", "auto"))
    figures["default_vs_fp32_short_b32"] = ratio(
        figures[f"{default}_short_b32"], figures["torch_fp32_short_b32"]
    )
    figures["default_vs_fp32_short_b1"] = ratio(
        figures[f"{default}_short_b1"], figures["torch_fp32_short_b1"]
    )
    figures["build_fast_vs_fp32"] = ratio(
        figures[f"{default}_build_per_s"], figures["torch_fp32_build_per_s"]
    )
    return figures


def report(figures: dict[str, float]) -> None:
    if not figures:
        return
    print("| backend | short b1/s | short b32/s | long b32/s | p50 ms | min cosine | RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for backend, precision in (*COMBINATIONS, FASTEMBED):
        name = f"{backend}_{precision}"
        print(
            f"| {backend} {precision} | {figures[f'{name}_short_b1']:.0f} | "
            f"{figures[f'{name}_short_b32']:.0f} | {figures[f'{name}_long_b32']:.0f} | "
            f"{figures[f'{name}_p50_ms']:.1f} | {figures[f'{name}_min_cosine']:.4f} | "
            f"{figures[f'{name}_rss_mib']:.0f} |"
        )
    print(
        f"default vs torch fp32: {figures['default_vs_fp32_short_b1']:.2f}x at batch 1, "
        f"{figures['default_vs_fp32_short_b32']:.2f}x at batch 32, index build "
        f"{figures['build_fast_vs_fp32']:.2f}x (goal 2.5x)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts")
    parser.add_argument("--child", nargs=4, metavar=("BACKEND", "PRECISION", "TEXTS", "OUT"))
    args = parser.parse_args(argv)
    if args.child:
        backend, precision, texts, out = args.child
        print(json.dumps(child(backend, precision, Path(texts), Path(out))))
        return 0
    report(run(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
