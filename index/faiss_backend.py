"""FAISS side of the index: import, index types, building (CPU or GPU) and per-call search.

Every index holds L2-normalized vectors compared by inner product and answers with stable
64-bit template ids: ``flat`` and ``hnsw`` through ``IndexIDMap2``, ``ivf`` natively.
Search-time knobs (efSearch, nprobe) and ID filters travel in a per-call ``SearchParameters``
object, never as index-wide settings, so concurrent searches on one index cannot race.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from tqdm import tqdm

log = logging.getLogger("thoughtbank.index")

#: Per index type, the stored parameters ``search_parameters`` reads.
SEARCH_PARAMS = {"flat": (), "hnsw": ("ef_search",), "ivf": ("nprobe",)}
INDEX_TYPES = tuple(SEARCH_PARAMS)
# Exact search stays about as fast as a query's embedding up to here; HNSW above.
AUTO_FLAT_MAX = 50_000
# FAISS's own efConstruction; search recall comes from ef_search (benchmarks.bench_index).
HNSW_DEFAULTS = {"m": 32, "ef_construction": 40, "ef_search": 128}
# k-means wants about 39 training points per centroid; fewer gives FAISS warnings and bad lists.
IVF_MIN_POINTS_PER_LIST = 39
# Real query embeddings need ~8 probed lists for recall@10 >= 0.9 even when nlist is small.
IVF_MIN_NPROBE = 8
# Vectors added per call while building, so progress shows on long HNSW builds.
ADD_CHUNK = 50_000
# faiss-cpu's default (128000 rows) keeps batched flat search on a slow path: ~4x slower.
BLAS_THRESHOLD = 20


class FaissMissingError(ImportError):
    pass


@functools.cache
def import_faiss() -> ModuleType:
    """The ``faiss`` module, tuned once for batched search, or a message naming the extra."""
    try:
        import faiss
    except ImportError as exc:
        raise FaissMissingError(
            "FAISS is not installed. Install exactly one of: pip install '.[cpu]' "
            "(faiss-cpu) or pip install '.[gpu]' (faiss-gpu, needs CUDA)"
        ) from exc
    faiss.cvar.distance_compute_blas_threshold = BLAS_THRESHOLD
    return faiss


@dataclass(frozen=True)
class IndexSpec:
    """A concrete index type with its build and default search parameters."""

    index_type: str
    params: dict[str, int] = field(default_factory=dict)


def ivf_nlist(count: int, requested: int | None = None) -> int:
    """Inverted lists for ``count`` vectors: ~4 sqrt(n), never more than k-means can train."""
    trainable = max(1, count // IVF_MIN_POINTS_PER_LIST)
    wanted = requested or max(1, int(4 * math.sqrt(count)))
    return min(wanted, trainable)


def resolve_spec(index_type: str, count: int, overrides: dict[str, int] | None = None) -> IndexSpec:
    """Turn a requested type (``auto`` included) and optional parameters into an ``IndexSpec``.

    ``auto`` is exact search for small banks and HNSW above ``AUTO_FLAT_MAX``. IVF's nlist is
    clamped to what ``count`` vectors can train, so rebuilding after a removal never fails.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if index_type == "auto":
        index_type = "flat" if count <= AUTO_FLAT_MAX else "hnsw"
    if index_type == "flat":
        return IndexSpec("flat")
    if index_type == "hnsw":
        return IndexSpec("hnsw", {**HNSW_DEFAULTS, **overrides})
    if index_type == "ivf":
        nlist = ivf_nlist(count, overrides.get("nlist"))
        nprobe = overrides.get("nprobe") or max(IVF_MIN_NPROBE, nlist // 16)
        return IndexSpec("ivf", {"nlist": nlist, "nprobe": min(nprobe, nlist)})
    raise ValueError(f"unknown index type {index_type!r}; expected auto or one of {INDEX_TYPES}")


def new_index(spec: IndexSpec, dimension: int) -> Any:
    """An empty CPU index for ``spec`` whose ``add_with_ids`` keeps our 64-bit ids."""
    faiss = import_faiss()
    metric = faiss.METRIC_INNER_PRODUCT
    if spec.index_type == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
    if spec.index_type == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dimension, spec.params["m"], metric)
        hnsw.hnsw.efConstruction = spec.params["ef_construction"]
        hnsw.hnsw.efSearch = spec.params["ef_search"]
        return faiss.IndexIDMap2(hnsw)
    index = faiss.index_factory(dimension, f"IVF{spec.params['nlist']},Flat", metric)
    index.nprobe = spec.params["nprobe"]
    # ivf_nlist already keeps enough points per list; below 39 vectors nlist is 1 and k-means
    # would only warn.
    index.cp.min_points_per_centroid = 1
    return index


def stored_ids(index: Any) -> np.ndarray:
    """The 64-bit ids ``index`` holds, in no particular order (an ``IndexIDMap2``'s map, or
    the inverted lists of an IVF index)."""
    faiss = import_faiss()
    if hasattr(index, "id_map"):
        return np.asarray(faiss.vector_to_array(index.id_map), dtype=np.int64)
    lists = faiss.extract_index_ivf(index).invlists
    sizes = [lists.list_size(i) for i in range(lists.nlist)]
    return np.concatenate(
        [np.empty(0, np.int64)]
        + [faiss.rev_swig_ptr(lists.get_ids(i), n).copy() for i, n in enumerate(sizes) if n]
    )


def gpu_available() -> bool:
    """Whether this FAISS build has GPU support and sees a GPU (faiss-gpu imports without one)."""
    faiss = import_faiss()
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def resolve_index_device(device: str, spec: IndexSpec) -> str:
    """``cpu`` or ``cuda`` for building ``spec``; says why when a requested GPU is not used."""
    if device == "cpu":
        return "cpu"
    if spec.index_type == "hnsw":
        if device == "cuda":
            log.warning("FAISS has no GPU HNSW: building the hnsw index on the CPU")
        return "cpu"
    if gpu_available():
        return "cuda"
    if device == "cuda":
        log.warning(
            "--device cuda: FAISS has no usable GPU (faiss-gpu not installed or no GPU "
            "visible); building the index on the CPU"
        )
    return "cpu"


def build_faiss_index(
    vectors: np.ndarray,
    ids: np.ndarray,
    spec: IndexSpec,
    device: str = "cpu",
    show_progress: bool = False,
) -> Any:
    """Train (IVF) and fill an index for ``spec``; GPU work is copied back to a CPU index."""
    faiss = import_faiss()
    index = new_index(spec, vectors.shape[1])
    on_gpu = resolve_index_device(device, spec) == "cuda"
    if on_gpu:
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, 0, index)
    if not index.is_trained:
        log.info("training %s index on %d vectors", spec.index_type, len(vectors))
        index.train(vectors)
    starts = range(0, len(vectors), ADD_CHUNK)
    for start in tqdm(
        starts,
        desc=f"adding to {spec.index_type} index",
        unit="chunk",
        disable=not show_progress or len(starts) < 2,
    ):
        index.add_with_ids(vectors[start : start + ADD_CHUNK], ids[start : start + ADD_CHUNK])
    return faiss.index_gpu_to_cpu(index) if on_gpu else index


class IdFilter:
    """A FAISS ID selector over a fixed set of template ids, built once and then shared.

    Building an ``IDSelectorBatch`` hashes every id (about 1 ms for 25k ids), so a filter used
    on every request (one task's templates) is built once per loaded index, not per search.
    Searches only read it, so concurrent searches may share one. The selector keeps its own
    copy of the ids.
    """

    def __init__(self, ids: np.ndarray) -> None:
        self.selector = import_faiss().IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))


def spec_problem(spec: IndexSpec) -> str | None:
    """Why an index described by ``spec`` cannot be searched, or None."""
    if spec.index_type not in SEARCH_PARAMS:
        return f"unknown index type {spec.index_type!r}"
    missing = [name for name in SEARCH_PARAMS[spec.index_type] if name not in spec.params]
    return f"{spec.index_type} index without {missing} in index_params" if missing else None


def search_parameters(
    spec: IndexSpec,
    k: int,
    allowed: IdFilter | None = None,
    ef_search: int | None = None,
    nprobe: int | None = None,
) -> Any:
    """A per-call ``SearchParameters`` with the ID filter and this call's efSearch/nprobe."""
    faiss = import_faiss()
    options: dict[str, Any] = {}
    if allowed is not None:
        options["sel"] = allowed.selector
    if spec.index_type == "hnsw":
        ef = ef_search or spec.params["ef_search"]
        return faiss.SearchParametersHNSW(efSearch=max(ef, k), **options)
    if spec.index_type == "ivf":
        return faiss.SearchParametersIVF(nprobe=nprobe or spec.params["nprobe"], **options)
    return faiss.SearchParameters(**options) if options else None
