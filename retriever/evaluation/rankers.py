"""Ranking methods compared by the harness: baselines, ablations and thoughtbank's own.

Each method ranks corpus rows for the test queries of one ``Fold`` and returns a matrix of row
numbers (-1 where fewer than ``depth`` rows exist). Dense search goes through FAISS and tasks are
routed by the server's own ``route_task``, so the figures describe what is served; the lexical
blend (``thoughtbank.retriever.evaluation.lexical``) is measured beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from thoughtbank.index import import_faiss, train_task_router
from thoughtbank.progress import with_progress
from thoughtbank.retriever.evaluation.dataset import Fold
from thoughtbank.retriever.evaluation.lexical import HybridConfig, LexicalScorer, hybrid_order
from thoughtbank.retriever.serving.task_routing import route_task

MISSING = -1
#: BM25 weight of the ``dense+bm25`` ablation when the configured blend has none: the best of
#: 0.1/0.3/0.5 for dense retrieval alone on the FusionBench mix (P@3 0.709 -> 0.744).
LEXICAL_ABLATION_WEIGHT = 0.3


@dataclass
class EvalCorpus:
    """Texts, task labels and embeddings of every evaluation query, computed once per run."""

    texts: list[str]
    tasks: np.ndarray
    embeddings: np.ndarray
    _lexical: dict[bytes, LexicalScorer] = field(default_factory=dict, repr=False)

    def lexical(self, rows: np.ndarray) -> LexicalScorer:
        """BM25 over ``rows`` (cached per row set: every method of a fold shares it)."""
        key = rows.tobytes()
        if key not in self._lexical:
            self._lexical[key] = LexicalScorer([self.texts[r] for r in rows])
        return self._lexical[key]


@dataclass(frozen=True)
class TaskRouting:
    """Per corpus row (as a test query): predicted task, its confidence, and the task its
    retrieval is routed to ("" for all templates). Rows never tested keep ""."""

    predicted: np.ndarray
    confidence: np.ndarray
    routed: np.ndarray

    def of(self, fold: Fold) -> np.ndarray:
        routed: np.ndarray = self.routed[fold.test_rows]
        return routed


Ranker = Callable[[EvalCorpus, Fold, int], np.ndarray]


def _pad(rows: Sequence[int] | np.ndarray, depth: int) -> np.ndarray:
    ranked = np.full(depth, MISSING, dtype=np.int64)
    kept = np.asarray(rows[:depth], dtype=np.int64)
    ranked[: len(kept)] = kept
    return ranked


def _without_self(ids: np.ndarray, own: int, exclude_self: bool) -> list[int]:
    return [int(i) for i in ids if i != MISSING and not (exclude_self and i == own)]


def dense_candidates(
    corpus: EvalCorpus, fold: Fold, depth: int, routed: np.ndarray | None = None
) -> list[list[int]]:
    """Per test query, corpus rows by cosine similarity; within its routed task when given.

    A routed query whose task has fewer than ``depth`` rows is topped up from all rows, as the
    server does for a non-strict task.
    """
    faiss = import_faiss()
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(corpus.embeddings.shape[1]))
    index.add_with_ids(corpus.embeddings[fold.corpus_rows], fold.corpus_rows.astype(np.int64))
    fetch = min(depth + int(fold.exclude_self), index.ntotal)
    vectors = corpus.embeddings[fold.test_rows]
    _, plain = index.search(vectors, fetch)
    ranked = [
        _without_self(ids, own, fold.exclude_self)
        for ids, own in zip(plain, fold.test_rows, strict=True)
    ]
    if routed is None:
        return ranked
    corpus_tasks = corpus.tasks[fold.corpus_rows]
    for task in set(routed.tolist()) - {""}:
        members = np.flatnonzero(routed == task)
        selector = faiss.IDSelectorBatch(fold.corpus_rows[corpus_tasks == task].astype(np.int64))
        _, ids = index.search(vectors[members], fetch, params=faiss.SearchParameters(sel=selector))
        for member, task_ids in zip(members, ids, strict=True):
            first = _without_self(task_ids, fold.test_rows[member], fold.exclude_self)
            if len(first) < depth:
                seen = set(first)
                first += [r for r in ranked[member] if r not in seen]
            ranked[member] = first
    return ranked


def random_ranker(corpus: EvalCorpus, fold: Fold, depth: int) -> np.ndarray:
    """Uniformly random corpus rows: the floor every method must beat."""
    rng = np.random.default_rng(0)
    rows = []
    for own in fold.test_rows:
        pool = fold.corpus_rows[fold.corpus_rows != own] if fold.exclude_self else fold.corpus_rows
        rows.append(_pad(rng.choice(pool, size=min(depth, len(pool)), replace=False), depth))
    return np.stack(rows)


def bm25_ranker(corpus: EvalCorpus, fold: Fold, depth: int) -> np.ndarray:
    """BM25 alone over the corpus rows (lexical retrieval without embeddings)."""
    scorer = corpus.lexical(fold.corpus_rows)
    rows = []
    for own in fold.test_rows:
        order = fold.corpus_rows[np.argsort(-scorer.scores(corpus.texts[own]), kind="stable")]
        rows.append(_pad(_without_self(order[: depth + 1], own, fold.exclude_self), depth))
    return np.stack(rows)


def predict_routing(
    corpus: EvalCorpus, folds: Sequence[Fold], config: HybridConfig, progress: bool = False
) -> TaskRouting:
    """Predict each test query's task with a classifier trained, calibrated and measured as
    the index build does, on its fold's ``train_rows`` only, so no query's own fold ever
    trains what ranks it. ``progress`` shows a bar of folds trained on stderr."""
    count = len(corpus.texts)
    predicted = np.full(count, "", dtype=object)
    confidence = np.zeros(count, dtype=np.float32)
    routed = np.full(count, "", dtype=object)
    for fold in with_progress(folds, "training task routers", "folds", progress):
        train, test = fold.train_rows, fold.test_rows
        classifier, quality = train_task_router(
            [corpus.texts[r] for r in train], corpus.embeddings[train], corpus.tasks[train].tolist()
        )
        prediction = classifier.predict([corpus.texts[r] for r in test], corpus.embeddings[test])
        predicted[test] = prediction.tasks
        confidence[test] = prediction.confidences
        unrouted = frozenset(quality.unrouted)
        routed[test] = [
            route_task(task, float(c), config, unrouted)
            for task, c in zip(prediction.tasks, prediction.confidences, strict=True)
        ]
    return TaskRouting(predicted, confidence, routed)


@dataclass(frozen=True)
class HybridRanker:
    """Dense retrieval, routed by task (predicted, given or none), re-ordered by the blend."""

    config: HybridConfig
    routing: Callable[[Fold], np.ndarray | None]

    def __call__(self, corpus: EvalCorpus, fold: Fold, depth: int) -> np.ndarray:
        fetch = max(depth, self.config.rerank_depth if self.config.lexical_weight else depth)
        candidates = dense_candidates(corpus, fold, fetch, self.routing(fold))
        lexical = corpus.lexical(fold.corpus_rows) if self.config.lexical_weight else None
        position = {int(row): i for i, row in enumerate(fold.corpus_rows)}
        rows = []
        for own, ranked in zip(fold.test_rows, candidates, strict=True):
            dense = corpus.embeddings[ranked] @ corpus.embeddings[own]
            order = hybrid_order(
                corpus.texts[own], [position[r] for r in ranked], dense, lexical, self.config
            )
            rows.append(_pad([ranked[i] for i in order], depth))
        return np.stack(rows)


def no_routing(fold: Fold) -> None:
    return None


def given_routing(corpus: EvalCorpus) -> Callable[[Fold], np.ndarray]:
    """Route every query to its true task: retrieval with the task label."""
    return lambda fold: corpus.tasks[fold.test_rows]


def method_rankers(
    corpus: EvalCorpus,
    config: HybridConfig,
    routing: Callable[[Fold], np.ndarray | None],
    baselines: bool,
) -> dict[str, Ranker]:
    """The configured method, plus baselines and one ablation per part when asked."""
    methods: dict[str, Ranker] = {}
    if baselines:
        without_lexical = replace(config, lexical_weight=0.0)
        with_lexical = replace(
            config, lexical_weight=config.lexical_weight or LEXICAL_ABLATION_WEIGHT
        )
        methods.update(
            {
                "random": random_ranker,
                "bm25": bm25_ranker,
                "dense": HybridRanker(without_lexical, no_routing),
                "dense+bm25": HybridRanker(with_lexical, no_routing),
                "dense+task": HybridRanker(without_lexical, routing),
            }
        )
    methods["thoughtbank"] = HybridRanker(config, routing)
    return methods
