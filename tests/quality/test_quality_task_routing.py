"""Routing for any number of tasks: two-task margins, held-out folds, calibration, switch-off."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from thoughtbank.index.task_classifier import (
    CLASSIFIER_ARRAYS_FILE,
    CLASSIFIER_META_FILE,
    TaskClassifier,
)
from thoughtbank.index.task_routing import (
    HeldOutMargins,
    RoutingQuality,
    calibration_error,
    fit_confidence_scale,
    measure_routing,
    stratified_folds,
    train_task_router,
)
from thoughtbank.retriever.serving.task_routing import TaskRouting, route_task

WORDS = (
    "apples",
    "river",
    "def",
    "theorem",
    "verdict",
    "enzyme",
    "sonnet",
    "tariff",
    "orbit",
    "ballot",
    "glacier",
    "sprint",
    "violin",
    "quartz",
    "harvest",
    "lantern",
)


def synthetic_queries(
    tasks: list[str], per_task: int, seed: int
) -> tuple[list[str], np.ndarray, list[str]]:
    """Queries whose words and embedding directions tell their task, with shared noise words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    vectors = np.zeros((len(tasks) * per_task, 32), dtype=np.float32)
    for t, task in enumerate(tasks):
        for n in range(per_task):
            noise = " ".join(rng.choice(WORDS[len(tasks) % 8 :], size=4))
            texts.append(f"{WORDS[t % len(WORDS)]} {t} {noise} #{n}")
            labels.append(task)
            row = len(labels) - 1
            vectors[row, t % 32] = 1.0
            vectors[row] += rng.normal(0, 0.1, 32).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, vectors, labels


task_names = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_/0123456789", min_size=1, max_size=12),
    min_size=2,
    max_size=12,
    unique=True,
)


@settings(max_examples=15, deadline=None)
@given(tasks=task_names, seed=st.integers(0, 2**16))
@example(tasks=["commonsenseqa", "gsm8k"], seed=0)
@example(tasks=["gsm8k", "commonsenseqa", "svamp"], seed=1)
def test_every_task_of_any_number_is_predicted_for_its_own_queries(
    tasks: list[str], seed: int
) -> None:
    texts, vectors, labels = synthetic_queries(tasks, per_task=6, seed=seed)
    test_texts, test_vectors, test_labels = synthetic_queries(tasks, per_task=2, seed=seed + 1)
    classifier = TaskClassifier.fit(texts, vectors, labels)
    prediction = classifier.predict(test_texts, test_vectors)
    assert list(prediction.tasks) == test_labels
    assert classifier.margins(test_texts, test_vectors).shape == (len(test_texts), len(tasks))
    assert np.all(prediction.confidences > 1 / len(tasks))
    assert np.allclose(prediction.probabilities.sum(axis=1), 1.0)


@settings(max_examples=6, deadline=None)
@given(count=st.sampled_from([2, 3, 9]), seed=st.integers(0, 2**16))
def test_held_out_routing_of_separable_tasks_routes_every_task(count: int, seed: int) -> None:
    tasks = [f"task{n}" for n in range(count)]
    classifier, quality = train_task_router(*synthetic_queries(tasks, per_task=10, seed=seed))
    assert quality.recall == dict.fromkeys(tasks, 1.0)
    assert quality.unrouted == () and quality.folds == 5
    assert 0 <= quality.calibration_error <= quality.uncalibrated_error + 1e-9
    assert classifier.config.confidence_scale == quality.confidence_scale


def test_indistinguishable_tasks_are_not_routed_to_and_a_warning_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = np.random.default_rng(0)
    twins = [f"{' '.join(rng.choice(WORDS, size=5))} {n}" for n in range(40)]
    distinct_texts, distinct_vectors, _ = synthetic_queries(["x", "code"], per_task=20, seed=0)
    texts = twins + distinct_texts[20:]
    vectors = np.vstack([np.tile(distinct_vectors[:1], (40, 1)), distinct_vectors[20:]])
    labels = ["left", "right"] * 20 + ["code"] * 20
    with caplog.at_level(logging.WARNING, logger="thoughtbank.index"):
        _, quality = train_task_router(texts, vectors, labels, min_recall=0.8)
    assert quality.recall["code"] == 1.0
    assert set(quality.unrouted) == {"left", "right"}
    assert "task 'left' is not routed to (held-out recall" in caplog.text
    config = TaskRouting()
    assert route_task("left", 0.99, config, frozenset(quality.unrouted)) == ""
    assert route_task("code", 0.99, config, frozenset(quality.unrouted)) == "code"


def test_folds_hold_every_task_in_training_and_never_hold_out_a_single_template() -> None:
    tasks = ["a"] * 7 + ["b"] * 3 + ["lone"]
    fold_of = stratified_folds(tasks, 5)
    assert fold_of[-1] == -1
    for fold in range(5):
        assert {t for t, f in zip(tasks, fold_of, strict=True) if f != fold} == {"a", "b", "lone"}
    assert sorted(fold_of[:7].tolist()) == [0, 0, 1, 1, 2, 3, 4]


def test_a_task_with_one_template_is_unrouted_as_unmeasured() -> None:
    texts, vectors, labels = synthetic_queries(["a", "b", "lone"], per_task=6, seed=3)
    _, quality = train_task_router(texts[:13], vectors[:13], labels[:13])
    assert "lone" not in quality.recall and quality.unrouted == ("lone",)


def test_temperature_scaling_recovers_the_scale_that_generated_the_labels() -> None:
    rng = np.random.default_rng(0)
    margins = rng.normal(0, 1, (4000, 3))
    probabilities = np.exp(2.5 * margins)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=p) for p in probabilities])
    scale = fit_confidence_scale(margins, labels, [0, 1, 2])
    assert scale == pytest.approx(2.5, rel=0.1)


def test_calibration_error_is_zero_when_confidence_matches_accuracy() -> None:
    confidences = np.array([0.75] * 4 + [0.25] * 4)
    correct = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
    assert calibration_error(confidences, correct) == pytest.approx(0.0)
    assert calibration_error(np.ones(4), np.array([1, 0, 1, 0], bool)) == pytest.approx(0.5)
    assert calibration_error(np.array([]), np.array([], bool)) == 0.0


def test_measured_routing_round_trips_through_the_manifest_dict() -> None:
    held = HeldOutMargins(
        np.array([[2.0, -2.0], [1.0, -1.0], [0.5, 0.2]], np.float32),
        np.array(["a", "a", "b"], dtype=object),
        ("a", "b"),
    )
    quality = measure_routing(held, folds=3, min_recall=0.5, uncalibrated_scale=3.0)
    assert quality.recall == {"a": 1.0, "b": 0.0} and quality.unrouted == ("b",)
    from dataclasses import asdict

    assert RoutingQuality.from_dict(json.loads(json.dumps(asdict(quality)))) == quality


def test_format_1_classifiers_still_load_and_a_two_task_one_routes_both(tmp_path: Path) -> None:
    """Format 1 stored the single decision column of a two-task SVM and the fixed scale."""
    texts, vectors, labels = synthetic_queries(["commonsenseqa", "gsm8k"], 8, seed=0)
    classifier = TaskClassifier.fit(texts, vectors, labels)
    classifier.save(tmp_path)
    with np.load(tmp_path / CLASSIFIER_ARRAYS_FILE) as arrays:
        stored = dict(arrays)
    np.savez_compressed(
        tmp_path / CLASSIFIER_ARRAYS_FILE,
        **{**stored, "coef": stored["coef"][1:], "intercept": stored["intercept"][1:]},
    )
    meta = json.loads((tmp_path / CLASSIFIER_META_FILE).read_text())
    (tmp_path / CLASSIFIER_META_FILE).write_text(json.dumps({**meta, "format": 1}))
    loaded = TaskClassifier.load(tmp_path)
    assert loaded.config.confidence_scale == 3.0
    assert loaded.predict(texts, vectors).tasks == classifier.predict(texts, vectors).tasks
    assert set(loaded.predict(texts, vectors).tasks) == {"commonsenseqa", "gsm8k"}
