"""Same-task metrics and evaluation protocols on hand-made inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from thoughtbank.retriever.evaluation.dataset import (
    LabeledQuery,
    Protocol,
    read_labeled_queries,
)
from thoughtbank.retriever.evaluation.metrics import build_report, score_relevance


def test_precision_hit_and_mrr_by_hand() -> None:
    relevant = np.array([[True, False, True], [False, False, False], [False, True, True]])
    scores = score_relevance(relevant, ks=(1, 3))
    assert scores.precision == {1: pytest.approx(1 / 3), 3: pytest.approx(4 / 9)}
    assert scores.hit == {1: pytest.approx(1 / 3), 3: pytest.approx(2 / 3)}
    assert scores.mrr == pytest.approx((1 + 0 + 0.5) / 3)


def test_report_per_task_and_empty_slots_count_as_misses() -> None:
    retrieved = np.array([["a", "a", ""], ["a", "b", "b"]], dtype=object)
    report = build_report("m", retrieved, np.array(["a", "b"], dtype=object), ks=(3,))
    assert report.per_task["a"].precision[3] == pytest.approx(2 / 3)
    assert report.per_task["b"].precision[3] == pytest.approx(2 / 3)
    assert report.per_task["b"].mrr == pytest.approx(0.5)
    assert report.to_dict()["p_at_3"] == pytest.approx(0.6667)


def _queries(count: int) -> list[LabeledQuery]:
    return [
        LabeledQuery(task=f"t{i % 3}", query=f"q{i}", split="train" if i % 4 else "test")
        for i in range(count)
    ]


def test_leave_one_out_folds_never_train_on_their_test_rows() -> None:
    folds = Protocol(folds=5).make_folds(_queries(40))
    tested = np.concatenate([f.test_rows for f in folds])
    assert sorted(tested.tolist()) == list(range(40))
    for fold in folds:
        assert fold.exclude_self and len(fold.corpus_rows) == 40
        assert not set(fold.test_rows) & set(fold.train_rows)


def test_split_protocol_uses_the_split_column() -> None:
    (fold,) = Protocol(leave_one_out=False).make_folds(_queries(40))
    assert not fold.exclude_self
    assert set(fold.test_rows.tolist()) == set(range(0, 40, 4))
    assert np.array_equal(fold.corpus_rows, fold.train_rows)
    with pytest.raises(ValueError, match="'dev'"):
        Protocol(leave_one_out=False, test="dev").make_folds(_queries(40))


def test_bad_query_files_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"task_name": "a", "query": "x"}) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"q.jsonl:2: not JSON"):
        read_labeled_queries(path)
    path.write_text(json.dumps({"task_name": "a", "query": " "}) + "\n")
    with pytest.raises(ValueError, match=r"q.jsonl:1: missing query"):
        read_labeled_queries(path)
