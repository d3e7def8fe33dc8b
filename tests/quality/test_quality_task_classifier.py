"""Task inference: learns tasks from queries, round-trips through .npz/.json, refuses damage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

from thoughtbank.index.task_classifier import (
    _END,
    _START,
    _WORD_PATTERN,
    CLASSIFIER_META_FILE,
    FeatureConfig,
    TaskClassifier,
    TaskClassifierError,
    _feature_kinds,
)
from thoughtbank.retriever.evaluation.dataset import read_labeled_queries, write_sample
from thoughtbank.retriever.serving.task_routing import TaskRouting, route_task

QUERIES = "fusionbench_14_task_queries.jsonl.gz"


@pytest.fixture(scope="module")
def sample_split(shared_data: Path, embedder, tmp_path_factory: pytest.TempPathFactory):
    path = write_sample(
        shared_data / QUERIES, tmp_path_factory.mktemp("q") / "q.jsonl", {"train": 20, "test": 6}
    )
    queries = read_labeled_queries(path)
    vectors = embedder.encode([q.query for q in queries])
    train = [i for i, q in enumerate(queries) if q.split == "train"]
    test = [i for i, q in enumerate(queries) if q.split == "test"]
    return queries, vectors, train, test


def test_predicts_held_out_tasks_and_survives_save_and_load(sample_split, tmp_path: Path) -> None:
    queries, vectors, train, test = sample_split
    classifier = TaskClassifier.fit(
        [queries[i].query for i in train], vectors[train], [queries[i].task for i in train]
    )
    texts = [queries[i].query for i in test]
    prediction = classifier.predict(texts, vectors[test])
    accuracy = np.mean([t == queries[i].task for t, i in zip(prediction.tasks, test, strict=True)])
    assert accuracy >= 0.6  # 14 tasks from 20 examples each; chance is 0.07
    assert np.allclose(prediction.probabilities.sum(axis=1), 1.0)

    classifier.save(tmp_path)
    loaded = TaskClassifier.load(tmp_path).predict(texts, vectors[test])
    assert loaded.tasks == prediction.tasks
    assert np.allclose(loaded.probabilities, prediction.probabilities, atol=1e-6)


@pytest.mark.parametrize("kind", ["char", "word"])
def test_ngrams_hash_to_the_columns_of_scikit_learns_hashing_vectorizer(kind: str) -> None:
    """Classifiers stored before the per-query hashing keep their meaning: same columns, same
    counts as ``HashingVectorizer``, for scripts, emoji, LaTeX, code and the empty query."""
    texts = [
        "What is 2 + 2?",
        "",
        "naïve café — 東京 😀",
        "$\\frac{1}{2} + x^2$",
        "def f(x):\n    return x  # x x x",
        "A A a a a " * 20,
        "  spaced \t\n out\u3000words  ",
        "x",
    ]
    config = FeatureConfig()
    reference = (
        HashingVectorizer(
            analyzer=kind,
            ngram_range=getattr(config, f"{kind}_ngrams"),
            n_features=1 << config.hash_bits,
            alternate_sign=False,
            norm=None,
            lowercase=kind == "word",
            token_pattern=_WORD_PATTERN if kind == "word" else None,
        )
        .transform([f"{_START}{t}{_END}" for t in texts])
        .tocsr()
    )
    reference.sort_indices()
    features = _feature_kinds(config)[kind]
    for row, text in enumerate(texts):
        columns, frequencies = features.counts(text)
        expected = reference[row]
        assert columns.tolist() == expected.indices.tolist()
        assert np.allclose(frequencies, 1.0 + np.log(expected.data))


def test_confident_predictions_route_and_unsure_ones_do_not() -> None:
    config = TaskRouting(min_confidence=0.6)
    assert route_task("gsm8k", 0.9, config) == "gsm8k"
    assert route_task("gsm8k", 0.3, config) == ""


def test_needs_two_tasks() -> None:
    with pytest.raises(TaskClassifierError, match="two tasks"):
        TaskClassifier.fit(["a", "b"], np.zeros((2, 4), np.float32), ["x", "x"])


def test_damaged_or_foreign_files_are_refused(tmp_path: Path) -> None:
    texts = ["What is 2 + 2?", "Who wrote Hamlet?", "What is 3 * 5?", "Who painted the Mona Lisa?"]
    vectors = np.eye(4, dtype=np.float32)
    TaskClassifier.fit(texts, vectors, ["math", "trivia", "math", "trivia"]).save(tmp_path)
    meta = json.loads((tmp_path / CLASSIFIER_META_FILE).read_text())
    (tmp_path / CLASSIFIER_META_FILE).write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(TaskClassifierError, match="unsupported"):
        TaskClassifier.load(tmp_path)
    with pytest.raises(TaskClassifierError, match="unreadable"):
        TaskClassifier.load(tmp_path / "missing")
