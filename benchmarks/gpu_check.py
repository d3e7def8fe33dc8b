"""GPU check of the index build path (< 2 minutes): FAISS on the GPU must match the CPU path.

    python -m benchmarks.gpu_check

Needs faiss-gpu (``pip install '.[gpu]'``, CUDA 12 wheels) and a visible GPU; where
either is missing it says so and exits 0. Otherwise it builds flat and ivf indexes through
``build_faiss_index(..., device="cuda")`` and the CPU path, and checks:

* flat: the GPU-built index returns the CPU-built one's ids (>= 99.9%: float near-ties);
* ivf: GPU k-means finds other centroids than CPU k-means, so ids may differ at the default
  nprobe; searched exhaustively (nprobe = nlist) both must give flat's results, and at the
  default nprobe the GPU index's recall must be within 0.02 of the CPU index's;
* a whole ``build_index`` with ``device="cuda"`` loads and searches like a CPU-built one.

Then it prints CPU and GPU build times.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_index import SyntheticEmbedder, clustered_vectors, synthetic_templates
from thoughtbank.index import IndexSettings, build_index, load_index, template_int_id
from thoughtbank.index.faiss_backend import (
    FaissMissingError,
    IndexSpec,
    build_faiss_index,
    gpu_available,
    resolve_spec,
    search_parameters,
)

COUNT = 100_000
QUERIES = 500
K = 10
# Results count as equal at this recall: GPU and CPU kernels may order float near-ties apart.
SAME = 0.999


def _timed_build(
    spec: IndexSpec, vectors: np.ndarray, ids: np.ndarray, device: str
) -> tuple[Any, float]:
    start = time.perf_counter()
    index = build_faiss_index(vectors, ids, spec, device)
    return index, time.perf_counter() - start


def _ids(index: Any, queries: np.ndarray, spec: IndexSpec, nprobe: int | None = None) -> np.ndarray:
    return index.search(queries, K, params=search_parameters(spec, K, nprobe=nprobe))[1]


def _recall(truth: np.ndarray, found: np.ndarray) -> float:
    return sum(len(set(t) & set(f)) for t, f in zip(truth, found, strict=True)) / truth.size


def check_flat_and_ivf(report: Callable[[str, bool], None]) -> None:
    vectors, queries = clustered_vectors(COUNT), clustered_vectors(QUERIES, seed=7)
    ids = np.arange(COUNT, dtype=np.int64) * 3 + 1
    flat = IndexSpec("flat")
    cpu_flat, cpu_flat_s = _timed_build(flat, vectors, ids, "cpu")
    gpu_flat, gpu_flat_s = _timed_build(flat, vectors, ids, "cuda")
    truth = _ids(cpu_flat, queries, flat)
    report(
        f"flat: GPU-built index finds the CPU-built one's neighbours (build cpu "
        f"{cpu_flat_s:.2f} s, gpu {gpu_flat_s:.2f} s)",
        _recall(truth, _ids(gpu_flat, queries, flat)) >= SAME,
    )
    ivf = resolve_spec("ivf", COUNT)
    cpu_ivf, cpu_ivf_s = _timed_build(ivf, vectors, ids, "cpu")
    gpu_ivf, gpu_ivf_s = _timed_build(ivf, vectors, ids, "cuda")
    nlist = ivf.params["nlist"]
    report(
        f"ivf {ivf.params}: exhaustive search equals flat on both (build cpu "
        f"{cpu_ivf_s:.1f} s, gpu {gpu_ivf_s:.1f} s = {cpu_ivf_s / gpu_ivf_s:.1f}x faster)",
        min(_recall(truth, _ids(index, queries, ivf, nlist)) for index in (cpu_ivf, gpu_ivf))
        >= SAME,
    )
    cpu_recall = _recall(truth, _ids(cpu_ivf, queries, ivf))
    gpu_recall = _recall(truth, _ids(gpu_ivf, queries, ivf))
    report(
        f"ivf recall@10 at nprobe {ivf.params['nprobe']}: cpu {cpu_recall:.3f}, "
        f"gpu {gpu_recall:.3f}",
        abs(cpu_recall - gpu_recall) <= 0.02,
    )


def check_artifact(report: Callable[[str, bool], None]) -> None:
    count = 20_000
    vectors = clustered_vectors(count)
    templates = synthetic_templates(count)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        loaded = {}
        for device in ("cpu", "cuda"):
            build_index(
                templates,
                Path(tmp) / device,
                SyntheticEmbedder(vectors),
                settings=IndexSettings("flat"),
                device=device,
            )
            loaded[device] = load_index(Path(tmp) / device)
        query = loaded["cpu"].embeddings_of([template_int_id(templates[5].id)])
        cpu_ids, gpu_ids = (loaded[d].search(query, K)[1] for d in ("cpu", "cuda"))
        report(
            "build_index on cuda: loads and searches like the CPU-built version",
            np.array_equal(cpu_ids, gpu_ids),
        )


def main() -> int:
    try:
        usable = gpu_available()
    except FaissMissingError as exc:
        print(f"no GPU check: {exc}")
        return 0
    if not usable:
        print(
            "no GPU: this FAISS has no GPU support or sees no GPU (needs faiss-gpu, CUDA and "
            "a visible device); nothing to check, exit 0"
        )
        return 0
    failures = []

    def report(what: str, ok: bool) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    check_flat_and_ivf(report)
    check_artifact(report)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
