"""Approximate index types against exact search, on clustered vectors and on real embeddings.

Uniform random vectors give approximate indexes near-zero recall, so the fast tests use
clustered synthetic data (what embeddings of many similar queries look like) and the slow test
uses real query embeddings.
"""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from thoughtbank.index.faiss_backend import (
    IndexSpec,
    build_faiss_index,
    resolve_spec,
    search_parameters,
)

K = 10


def clustered_vectors(count: int, dimension: int, clusters: int, seed: int) -> np.ndarray:
    """Normalized points around random centres, like embeddings of related questions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dimension))
    points = centres[rng.integers(0, clusters, count)] + rng.normal(0, 1.0, (count, dimension))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def recall_at_k(spec: IndexSpec, corpus: np.ndarray, queries: np.ndarray) -> float:
    ids = np.arange(len(corpus), dtype=np.int64) * 7919 + 3  # not row numbers: real id mapping
    exact = build_faiss_index(corpus, ids, IndexSpec("flat"))
    approximate = build_faiss_index(corpus, ids, spec)
    _, truth = exact.search(queries, K)
    _, found = approximate.search(queries, K, params=search_parameters(spec, K))
    hits = sum(len(set(t) & set(f)) for t, f in zip(truth, found, strict=True))
    return hits / truth.size


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    data = clustered_vectors(10_200, 64, 150, seed=1)
    return data[:10_000], data[10_000:]


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_recall_on_clustered_vectors(clustered, index_type: str) -> None:
    corpus, queries = clustered
    spec = resolve_spec(index_type, len(corpus))
    assert recall_at_k(spec, corpus, queries) >= 0.9


def test_auto_picks_exact_search_for_small_banks() -> None:
    assert resolve_spec("auto", 1_000).index_type == "flat"
    assert resolve_spec("auto", 1_000_000).index_type == "hnsw"
    assert resolve_spec("ivf", 100).params == {"nlist": 2, "nprobe": 2}


def test_concurrent_searches_keep_their_own_parameters(clustered) -> None:
    """efSearch travels with each call: a thread asking for 10 never changes another's 256."""
    corpus, _ = clustered
    queries = clustered_vectors(200, corpus.shape[1], clusters=200, seed=2)  # other clusters:
    spec = resolve_spec("hnsw", len(corpus))  # a small efSearch misses some of their neighbours
    index = build_faiss_index(corpus, np.arange(len(corpus), dtype=np.int64), spec)

    def search(ef: int) -> np.ndarray:
        return index.search(queries, K, params=search_parameters(spec, K, ef_search=ef))[1]

    serial = {ef: search(ef) for ef in (K, 256)}
    assert not np.array_equal(serial[K], serial[256])
    with ThreadPoolExecutor(max_workers=4) as pool:
        efs = [K, 256] * 8
        for ef, result in zip(efs, pool.map(search, efs), strict=True):
            np.testing.assert_array_equal(result, serial[ef])


@pytest.fixture(scope="module")
def real_embeddings(shared_data: Path, embedder) -> tuple[np.ndarray, np.ndarray]:
    """1,000 real benchmark queries as the corpus and 100 others as queries (short ones only,
    to keep embedding time down on two cores)."""
    with gzip.open(shared_data / "fusionbench_14_task_queries.jsonl.gz", "rt") as handle:
        queries = [q for q in (json.loads(line)["query"] for line in handle) if len(q) < 150]
    rng = np.random.default_rng(0)
    chosen = [queries[i] for i in rng.choice(len(queries), 1_100, replace=False)]
    vectors = embedder.encode(chosen)
    return vectors[:1_000], vectors[1_000:]


@pytest.mark.slow
@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_recall_on_real_query_embeddings(real_embeddings, index_type: str) -> None:
    corpus, queries = real_embeddings
    assert recall_at_k(resolve_spec(index_type, len(corpus)), corpus, queries) >= 0.9
