"""Index benchmark: build time and peak memory, search latency, recall, embedding throughput.

    python -m benchmarks.bench_index [--quick]

* build: ``build_index`` end to end (FAISS, templates, embeddings, checksums, manifest) at 10k,
  100k and 1M templates with synthetic clustered vectors (embedding excluded: see the last
  figure), each in a fresh process so its peak RSS is its own. Peers: the bare FAISS build
  inside it, and the raw vectors' size.
* search: ``LoadedIndex.search`` p50/p99 per query at batch 1 and 64 for flat, hnsw and ivf;
  peer: flat at the same size (and flat batch 64 with faiss's default BLAS threshold).
* recall@10 of hnsw and ivf against flat, on those same clustered vectors.
* embedding throughput of ``build_index`` with the real model against raw ``Embedder.encode``
  of the same texts (goal >= 0.9x).
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import machine_info, percentile_ms, ratio
from thoughtbank.index import (
    IndexSettings,
    TorchEmbedder,
    build_index,
    builder,
    load_index,
)
from thoughtbank.index.embedder import PROBE_SENTENCES
from thoughtbank.index.faiss_backend import BLAS_THRESHOLD, import_faiss
from thoughtbank.templates import ThoughtTemplate

DIMENSION = 384
INTRINSIC_DIMENSION = 32
# Within-cluster spread relative to the distance between centres.
SPREAD = 0.6 / INTRINSIC_DIMENSION**0.5
CENTRES_SEED = 1234
K = 10
SHARED_QUERIES = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "fusionbench_14_task_queries.jsonl.gz"
)
FULL = {
    "build": [
        ("flat", 10_000),
        ("hnsw", 10_000),
        ("ivf", 10_000),
        ("flat", 100_000),
        ("hnsw", 100_000),
        ("ivf", 100_000),
        ("flat", 1_000_000),
    ],
    "search_size": 100_000,
    "queries": 200,
    "batches": 10,
    "embed_texts": 1_000,
}
QUICK = {
    "build": [("flat", 2_000), ("hnsw", 2_000), ("ivf", 2_000), ("flat", 10_000)],
    "search_size": 2_000,
    "queries": 50,
    "batches": 3,
    "embed_texts": 128,
}


def clustered_vectors(count: int, seed: int = 0, clusters: int = 1_000) -> np.ndarray:
    """Normalized points around fixed random centres, spread in a 32-dimensional subspace.

    Sentence embeddings have a low intrinsic dimension; isotropic noise in all 384 dimensions
    would make every point nearly equidistant and approximate search look far worse than on
    real data.
    """
    shape = np.random.default_rng(CENTRES_SEED)  # corpus and queries share the clusters
    centres = shape.standard_normal((clusters, DIMENSION), dtype=np.float32)
    spread = shape.standard_normal((INTRINSIC_DIMENSION, DIMENSION), dtype=np.float32) * SPREAD
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, clusters, count)]
    vectors += rng.standard_normal((count, INTRINSIC_DIMENSION), dtype=np.float32) @ spread
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


class SyntheticEmbedder(TorchEmbedder):
    """Serves precomputed vectors for ``query <row>`` texts, so builds at 1M skip the model."""

    def __init__(self, vectors: np.ndarray) -> None:
        super().__init__("synthetic-clustered")
        self.vectors = vectors

    @property
    def dimension(self) -> int:
        return DIMENSION

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        if tuple(texts) == PROBE_SENTENCES:
            return clustered_vectors(len(texts), seed=99)
        return self.vectors[[int(text.rsplit(" ", 1)[1]) for text in texts]]


def synthetic_templates(count: int) -> list[ThoughtTemplate]:
    return [
        ThoughtTemplate(
            id=f"t{row:09d}",
            task=f"task{row % 14}",
            text="Task: synthetic",
            source_query=f"query {row}",
            source_models=("model",),
        )
        for row in range(count)
    ]


def _build_in_child(index_type: str, count: int, out: str) -> dict[str, float]:
    """Runs in a fresh process: build one version, timing it and the FAISS build inside it."""
    vectors = clustered_vectors(count)
    templates = synthetic_templates(count)
    faiss_seconds = []
    bare_build = builder.build_faiss_index

    def timed_faiss_build(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        index = bare_build(*args, **kwargs)
        faiss_seconds.append(time.perf_counter() - began)
        return index

    builder.build_faiss_index = timed_faiss_build  # this process builds nothing else
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    build_index(
        templates, Path(out), SyntheticEmbedder(vectors), settings=IndexSettings(index_type)
    )
    build_s = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "build_s": build_s,
        "faiss_s": faiss_seconds[0],
        "peak_extra_mib": max(peak_kib - baseline_kib, 0) / 1024,
    }


def bench_builds(plan: list[tuple[str, int]], root: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    context = multiprocessing.get_context("spawn")
    for index_type, count in plan:
        out = root / f"{index_type}-{count}"
        with context.Pool(1) as pool:
            result = pool.apply(_build_in_child, (index_type, count, str(out)))
        raw_mib = count * DIMENSION * 4 / 2**20
        name = f"build_{index_type}_{count}"
        figures[f"{name}_s"] = result["build_s"]
        figures[f"{name}_peak_extra_mib"] = result["peak_extra_mib"]
        print(
            f"build {index_type:<4} {count:>9,}: {result['build_s']:7.1f} s, "
            f"{ratio(result['build_s'], result['faiss_s']):.2f}x the bare FAISS build "
            f"({result['faiss_s']:.2f} s; the rest writes and hashes files); "
            f"peak extra RSS {result['peak_extra_mib']:,.0f} MiB "
            f"= {ratio(result['peak_extra_mib'], raw_mib):.2f}x the raw vectors "
            f"({raw_mib:,.0f} MiB)"
        )
    return figures


def _latencies(index, queries: np.ndarray, batch: int, batches: int) -> list[float]:
    """Seconds per query for ``batches`` calls of ``batch`` queries each (first call warms)."""
    index.search(queries[:batch], K)
    seconds = []
    for start in range(0, batch * batches, batch):
        chunk = queries[start % len(queries) :][:batch]
        began = time.perf_counter()
        index.search(chunk, K)
        seconds.append((time.perf_counter() - began) / len(chunk))
    return seconds


def _recall(truth: np.ndarray, found: np.ndarray) -> float:
    return sum(len(set(t) & set(f)) for t, f in zip(truth, found, strict=True)) / truth.size


def bench_search(root: Path, size: int, queries_count: int, batches: int) -> dict[str, float]:
    """Latency per type on the versions built above, and recall@10 against flat on them."""
    faiss = import_faiss()
    queries = clustered_vectors(max(queries_count, 64 * batches), seed=7)
    figures: dict[str, float] = {}
    flat_p50: dict[int, float] = {}
    truth = np.empty(0)
    for index_type in ("flat", "hnsw", "ivf"):
        index = load_index(root / f"{index_type}-{size}")
        for batch, calls in ((1, queries_count), (64, batches)):
            seconds = _latencies(index, queries, batch, calls)
            p50, p99 = percentile_ms(seconds, 50), percentile_ms(seconds, 99)
            flat_p50.setdefault(batch, p50)
            figures[f"search_{index_type}_{size}_b{batch}_p50_ms"] = p50
            figures[f"search_{index_type}_{size}_b{batch}_p99_ms"] = p99
            print(
                f"search {index_type:<4} {size:>9,} batch {batch:>2}: p50 {p50:7.3f} ms "
                f"p99 {p99:7.3f} ms per query ({ratio(p50, flat_p50[batch]):.2f}x flat)"
            )
        found = index.search(queries[:queries_count], K)[1]
        if index_type == "flat":
            truth = found
            continue
        recall = _recall(truth, found)
        figures[f"recall_at_10_{index_type}_{size}"] = recall
        print(
            f"recall@10 {index_type:<4} {size:>9,} {index.manifest.index_params}: "
            f"{recall:.3f} of flat's"
        )
    faiss.cvar.distance_compute_blas_threshold = 128_000
    flat = load_index(root / f"flat-{size}")
    default_p50 = percentile_ms(_latencies(flat, queries, 64, batches), 50)
    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD
    figures["search_flat_b64_default_blas_threshold_p50_ms"] = default_p50
    print(
        f"flat batch 64 with faiss's default BLAS threshold: p50 {default_p50:.3f} ms per "
        f"query; ours is {ratio(default_p50, flat_p50[64]):.1f}x faster"
    )
    return figures


def benchmark_texts(count: int) -> list[str]:
    """Real short benchmark queries where ../shared/data exists, else varied synthetic ones."""
    if SHARED_QUERIES.exists():
        with gzip.open(SHARED_QUERIES, "rt") as handle:
            queries = [q for q in (json.loads(line)["query"] for line in handle) if len(q) < 200]
        return queries[:count]
    return [
        f"Question {i}: how many apples are left if {i} of {3 * i + 7} are eaten?"
        for i in range(count)
    ]


def bench_embedding(count: int, root: Path) -> dict[str, float]:
    texts = benchmark_texts(count)
    embedder = TorchEmbedder()
    embedder.encode(texts[:64])  # load and warm the model outside both timings
    start = time.perf_counter()
    embedder.encode(texts)
    raw_s = time.perf_counter() - start
    templates = [
        ThoughtTemplate(
            id=f"e{i}", task="bench", text="Task: x", source_query=text, source_models=("m",)
        )
        for i, text in enumerate(texts)
    ]
    start = time.perf_counter()
    build_index(templates, root / "embedded", embedder)
    build_s = time.perf_counter() - start
    raw_rate, build_rate = len(texts) / raw_s, len(texts) / build_s
    print(
        f"embedding: build_index {build_rate:.0f} templates/s vs raw encode {raw_rate:.0f} "
        f"texts/s = {ratio(build_rate, raw_rate):.2f}x (goal >= 0.9x)"
    )
    return {
        "embed_build_per_s": build_rate,
        "embed_raw_per_s": raw_rate,
        "embed_build_vs_raw": ratio(build_rate, raw_rate),
    }


def run(quick: bool) -> dict[str, float]:
    plan = QUICK if quick else FULL
    print(json.dumps(machine_info()))
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        root = Path(tmp)
        figures |= bench_builds(plan["build"], root)
        figures |= bench_search(root, plan["search_size"], plan["queries"], plan["batches"])
        figures |= bench_embedding(plan["embed_texts"], root)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it works")
    run(parser.parse_args().quick)


if __name__ == "__main__":
    main()
