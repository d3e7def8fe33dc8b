"""How far the task classifier can be trusted, measured on folds of the index's own templates.

The classifier is trained once per fold on the other folds and predicts the held-out templates'
source queries. Those predictions give each task's held-out recall (the share of its queries
predicted as it) and fit the temperature that calibrates the confidences, so a routing threshold
of 0.3 means "right at least 30% of the time". A task whose held-out recall is below
``min_recall`` is not routed to: plain similarity decides for queries predicted as it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from thoughtbank.index.task_classifier import (
    FeatureConfig,
    NgramCounts,
    TaskClassifier,
    check_training_data,
    count_ngrams,
    select_rows,
)

log = logging.getLogger("thoughtbank.index")

DEFAULT_FOLDS = 5
#: Below this held-out recall a task is not routed to (the README gives the measured figures).
DEFAULT_MIN_RECALL = 0.7
CALIBRATION_BINS = 10
# Bounds of the fitted confidence scale (inverse temperature), searched in log space.
_SCALE_BOUNDS = (1e-2, 1e3)


@dataclass(frozen=True)
class RoutingQuality:
    """The held-out measurement stored in the manifest (``task_routing``)."""

    folds: int
    min_recall: float
    #: Per task with at least two templates: share of its held-out queries predicted as it.
    recall: dict[str, float]
    #: Tasks not routed to: recall below ``min_recall``, or too few templates to measure.
    unrouted: tuple[str, ...]
    confidence_scale: float
    #: Expected calibration error of the held-out confidences, after and before calibration.
    calibration_error: float
    uncalibrated_error: float

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RoutingQuality:
        return cls(**{**data, "unrouted": tuple(data["unrouted"])})  # type: ignore[arg-type]


@dataclass(frozen=True)
class HeldOutMargins:
    """Each training row's margins from the fold classifier that never saw it."""

    margins: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    @property
    def predicted(self) -> np.ndarray:
        return np.asarray(np.asarray(self.classes, dtype=object)[self.margins.argmax(axis=1)])


def stratified_folds(tasks: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Fold number of each row, each task spread evenly over the folds; -1 for the rows of a
    task with a single row, which stay in every fold's training set."""
    labels = np.asarray(tasks, dtype=object)
    fold_of = np.full(len(labels), -1, dtype=np.int64)
    rng = np.random.default_rng(seed)
    for task in sorted(set(tasks)):
        rows = np.flatnonzero(labels == task)
        if len(rows) > 1:
            fold_of[rng.permutation(rows)] = np.arange(len(rows)) % folds
    return fold_of


def held_out_margins(
    counts: NgramCounts,
    embeddings: np.ndarray,
    tasks: Sequence[str],
    folds: int,
    config: FeatureConfig,
) -> HeldOutMargins:
    """Margins of every row that can be held out, each from a classifier trained without its
    fold; every fold's training set holds every task (``stratified_folds``)."""
    labels = np.asarray(tasks, dtype=object)
    fold_of = stratified_folds(tasks, folds)
    classes = tuple(sorted(set(tasks)))
    margins = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for fold in range(folds):
        test, train = np.flatnonzero(fold_of == fold), np.flatnonzero(fold_of != fold)
        if not len(test):
            continue
        classifier = TaskClassifier.fit_counted(
            select_rows(counts, train), embeddings[train], labels[train].tolist(), config
        )
        margins[test] = classifier.margins_counted(select_rows(counts, test), embeddings[test])
    held = fold_of >= 0
    return HeldOutMargins(margins[held], labels[held], classes)


def fit_confidence_scale(margins: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> float:
    """The scale of the margins minimizing the held-out negative log-likelihood of the softmax
    (temperature scaling: one parameter, so the predicted task never changes)."""
    column = {task: i for i, task in enumerate(classes)}
    truth = np.array([column[task] for task in labels])
    rows = np.arange(len(truth))
    values = margins.astype(np.float64)

    def loss(log_scale: float) -> float:
        return float(-log_softmax(np.exp(log_scale) * values, axis=1)[rows, truth].mean())

    found = minimize_scalar(loss, bounds=tuple(np.log(_SCALE_BOUNDS)), method="bounded")
    return float(np.exp(found.x))


def calibration_error(
    confidences: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Expected calibration error: per equal-width confidence bin, |accuracy - mean
    confidence|, weighted by the bin's share of predictions."""
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if not len(confidences):
        return 0.0
    bin_of = np.minimum((confidences * bins).astype(np.int64), bins - 1)
    error = 0.0
    for b in np.unique(bin_of):
        members = bin_of == b
        error += members.mean() * abs(correct[members].mean() - confidences[members].mean())
    return float(error)


def _confidence_error(held: HeldOutMargins, scale: float) -> float:
    probabilities = softmax(scale * held.margins.astype(np.float64), axis=1)
    return calibration_error(probabilities.max(axis=1), held.predicted == held.labels)


def measure_routing(
    held: HeldOutMargins,
    folds: int,
    min_recall: float,
    uncalibrated_scale: float,
) -> RoutingQuality:
    """Per-task recall, the tasks to leave unrouted and the calibration, from held-out margins."""
    predicted = held.predicted
    recall = {
        task: float(np.mean(predicted[held.labels == task] == task))
        for task in held.classes
        if np.any(held.labels == task)
    }
    unrouted = tuple(task for task in held.classes if recall.get(task, 0.0) < min_recall)
    scale = fit_confidence_scale(held.margins, held.labels, held.classes)
    return RoutingQuality(
        folds=folds,
        min_recall=min_recall,
        recall=recall,
        unrouted=unrouted,
        confidence_scale=scale,
        calibration_error=_confidence_error(held, scale),
        uncalibrated_error=_confidence_error(held, uncalibrated_scale),
    )


def train_task_router(
    texts: Sequence[str],
    embeddings: np.ndarray,
    tasks: Sequence[str],
    folds: int = DEFAULT_FOLDS,
    min_recall: float = DEFAULT_MIN_RECALL,
    config: FeatureConfig | None = None,
) -> tuple[TaskClassifier, RoutingQuality]:
    """Measure routing on ``folds`` held-out folds, then train on every row with the
    calibrated confidence scale; warn about each task left unrouted."""
    config = config or FeatureConfig()
    if folds < 2:
        raise ValueError(f"held-out routing needs at least 2 folds, got {folds}")
    counts = count_ngrams(texts, config)
    check_training_data(counts, embeddings, tasks)
    held = held_out_margins(counts, embeddings, tasks, folds, config)
    quality = measure_routing(held, folds, min_recall, config.confidence_scale)
    for task in quality.unrouted:
        measured = quality.recall.get(task)
        why = (
            "a single template, too few to measure"
            if measured is None
            else f"held-out recall {measured:.3f} < {min_recall}"
        )
        log.warning(
            "task %r is not routed to (%s): similarity decides for queries predicted as it",
            task,
            why,
        )
    classifier = TaskClassifier.fit_counted(
        counts, embeddings, tasks, replace(config, confidence_scale=quality.confidence_scale)
    )
    return classifier, quality
