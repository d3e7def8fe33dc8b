"""The retrieval evaluation: every method ranked on the same folds, scored the same way.

Each query stands in for the template mined from it, so no LLM is needed: a method is good when
the templates it puts in the top k come from the query's own task. Queries are embedded once
per run and shared by every method and fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from thoughtbank.index import Embedder, calibration_error
from thoughtbank.progress import progress_bar
from thoughtbank.retriever.evaluation.dataset import LabeledQuery, Protocol
from thoughtbank.retriever.evaluation.lexical import HybridConfig
from thoughtbank.retriever.evaluation.metrics import RetrievalReport, build_report
from thoughtbank.retriever.evaluation.rankers import (
    MISSING,
    EvalCorpus,
    TaskRouting,
    given_routing,
    method_rankers,
    predict_routing,
)

TASK_LABEL_MODES = ("none", "given")


@dataclass(frozen=True)
class EvalSettings:
    """What to evaluate: protocol, whether the task label is given, cut-offs, the blend."""

    protocol: Protocol = field(default_factory=Protocol)
    task_label: str = "none"
    ks: tuple[int, ...] = (1, 3, 5)
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    baselines: bool = False


@dataclass(frozen=True)
class RetrievalEvaluation:
    """Reports per method (the configured one is ``thoughtbank``), task-inference accuracy,
    the share of queries routed, and the expected calibration error of the confidences."""

    reports: dict[str, RetrievalReport]
    task_accuracy: float | None
    routed_share: float | None
    calibration_error: float | None

    def to_dict(self) -> dict[str, object]:
        result = self.reports["thoughtbank"].to_dict()
        if self.task_accuracy is not None:
            result["task_inference"] = {
                "accuracy": round(self.task_accuracy, 4),
                "routed_share": round(self.routed_share or 0.0, 4),
                "calibration_error": round(self.calibration_error or 0.0, 4),
            }
        others = {name: r.to_dict() for name, r in self.reports.items() if name != "thoughtbank"}
        if others:
            result["baselines"] = others
        return result


def embed_corpus(
    queries: Sequence[LabeledQuery], embedder: Embedder, progress: bool = False
) -> EvalCorpus:
    texts = [q.query for q in queries]
    vectors = embedder.encode(texts, show_progress=progress)
    return EvalCorpus(texts, np.array([q.task for q in queries], dtype=object), vectors)


def evaluate_retrieval(
    corpus: EvalCorpus,
    queries: Sequence[LabeledQuery],
    settings: EvalSettings,
    progress: bool = False,
) -> RetrievalEvaluation:
    """Rank every fold's test queries with each method and score them.

    ``progress`` shows bars on stderr: task routers trained, then (method, fold) runs ranked."""
    if settings.task_label not in TASK_LABEL_MODES:
        raise ValueError(
            f"task label must be one of {TASK_LABEL_MODES}, got {settings.task_label!r}"
        )
    folds = settings.protocol.make_folds(queries)
    prediction: TaskRouting | None = None
    if settings.task_label == "given":
        routing = given_routing(corpus)
    else:
        prediction = predict_routing(corpus, folds, settings.hybrid, progress)
        routing = prediction.of
    depth = max(settings.ks)
    tested = np.concatenate([f.test_rows for f in folds])
    methods = method_rankers(corpus, settings.hybrid, routing, settings.baselines)
    reports = {}
    with progress_bar("ranking", "fold runs", progress, len(methods) * len(folds)) as bar:
        for name, ranker in methods.items():
            runs = []
            for fold in folds:
                runs.append(ranker(corpus, fold, depth))
                bar.update(1)
            ranked = np.concatenate(runs)
            retrieved = np.where(ranked == MISSING, "", corpus.tasks[np.maximum(ranked, 0)])
            reports[name] = build_report(name, retrieved, corpus.tasks[tested], settings.ks)
    return RetrievalEvaluation(reports, *_routing_summary(prediction, corpus.tasks, tested))


def _routing_summary(
    prediction: TaskRouting | None, tasks: np.ndarray, tested: np.ndarray
) -> tuple[float | None, float | None, float | None]:
    if prediction is None:
        return None, None, None
    correct = prediction.predicted[tested] == tasks[tested]
    return (
        float(np.mean(correct)),
        float(np.mean(prediction.routed[tested] != "")),
        calibration_error(prediction.confidence[tested], correct),
    )
