"""Same-task retrieval metrics: precision@k, hit@k and MRR, overall and per task.

A retrieved template "is relevant" when its task equals the query's: FusionFactory's finding is
that templates help when they come from the same kind of problem, so the share of same-task
templates in the top k is what retrieval quality means here. Empty slots count as misses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RetrievalScores:
    """Metrics of a group of queries; ``precision``/``hit`` are keyed by k."""

    count: int
    precision: dict[int, float]
    hit: dict[int, float]
    mrr: float

    def to_dict(self) -> dict[str, float | int]:
        flat: dict[str, float | int] = {"count": self.count, "mrr": round(self.mrr, 4)}
        flat.update({f"p_at_{k}": round(v, 4) for k, v in self.precision.items()})
        flat.update({f"hit_at_{k}": round(v, 4) for k, v in self.hit.items()})
        return flat


@dataclass(frozen=True)
class RetrievalReport:
    """One method's scores over all test queries and per task."""

    method: str
    overall: RetrievalScores
    per_task: dict[str, RetrievalScores]

    def to_dict(self) -> dict[str, object]:
        return {
            **self.overall.to_dict(),
            "per_task": {task: s.to_dict() for task, s in sorted(self.per_task.items())},
        }


def relevance(retrieved_tasks: np.ndarray, query_tasks: np.ndarray) -> np.ndarray:
    """Boolean (queries, depth): slot holds a template of the query's own task."""
    same_task: np.ndarray = retrieved_tasks == query_tasks[:, None]
    return same_task


def score_relevance(relevant: np.ndarray, ks: Sequence[int]) -> RetrievalScores:
    """Metrics from a boolean relevance matrix (queries, depth)."""
    first = np.where(relevant.any(axis=1), relevant.argmax(axis=1) + 1, 0)
    reciprocal = np.divide(1.0, first, out=np.zeros(len(first)), where=first > 0)
    return RetrievalScores(
        count=len(relevant),
        precision={k: float(relevant[:, :k].sum(axis=1).mean() / k) for k in ks},
        hit={k: float(relevant[:, :k].any(axis=1).mean()) for k in ks},
        mrr=float(reciprocal.mean()),
    )


def build_report(
    method: str, retrieved_tasks: np.ndarray, query_tasks: np.ndarray, ks: Sequence[int]
) -> RetrievalReport:
    """Overall and per-task scores of one method's rankings."""
    relevant = relevance(retrieved_tasks, query_tasks)
    per_task = {
        str(task): score_relevance(relevant[query_tasks == task], ks)
        for task in np.unique(query_tasks)
    }
    return RetrievalReport(method, score_relevance(relevant, ks), per_task)
