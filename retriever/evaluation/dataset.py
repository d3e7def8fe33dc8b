"""Labeled evaluation queries and the protocols that split them into index and test sides."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thoughtbank.files import open_text

REQUIRED_COLUMNS = ("task_name", "query")


@dataclass(frozen=True)
class LabeledQuery:
    """One evaluation query; ``task`` is the label same-task precision is measured against."""

    task: str
    query: str
    query_id: str = ""
    ground_truth: str = ""
    metric: str = ""
    split: str = ""


def read_labeled_queries(path: Path, split_column: str = "split") -> list[LabeledQuery]:
    """Queries from a JSONL file (plain or .gz) with at least ``task_name`` and ``query``.

    A row without them, or a line that is not JSON, is an error naming the line: evaluation
    figures over silently dropped rows would not be comparable between runs.
    """
    path = Path(path)
    queries = []
    with open_text(path) as handle:
        for line_number, line in enumerate(handle, 1):
            if line.strip():
                queries.append(_labeled_query(line, split_column, f"{path}:{line_number}"))
    if not queries:
        raise ValueError(f"{path}: no queries")
    return queries


def write_sample(source: Path, out: Path, per_split: dict[str, int]) -> Path:
    """Copy the first ``per_split[split]`` rows of every (task, split) of ``source`` to ``out``:
    a small, task-balanced slice for quick runs and tests."""
    source = Path(source)
    taken: dict[tuple[str, str], int] = {}
    kept = []
    with open_text(source) as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            query = _labeled_query(line, "split", f"{source}:{line_number}")
            key = (query.task, query.split)
            if taken.get(key, 0) < per_split.get(query.split, 0):
                taken[key] = taken.get(key, 0) + 1
                kept.append(line if line.endswith("\n") else line + "\n")
    Path(out).write_text("".join(kept), encoding="utf-8")
    return Path(out)


def _labeled_query(line: str, split_column: str, where: str) -> LabeledQuery:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object")
    missing = [c for c in REQUIRED_COLUMNS if not str(row.get(c) or "").strip()]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    return LabeledQuery(
        task=str(row["task_name"]),
        query=str(row["query"]),
        query_id=str(row.get("query_id") or ""),
        ground_truth=str(row.get("ground_truth") or ""),
        metric=str(row.get("metric") or ""),
        split=str(row.get(split_column) or ""),
    )


@dataclass(frozen=True)
class Fold:
    """Test queries ranked against ``corpus_rows``; learned parts trained on ``train_rows`` only.

    In leave-one-out mode every query is in the corpus and ``exclude_self`` keeps a query from
    retrieving itself, while ``train_rows`` leaves out the query's whole fold.
    """

    test_rows: np.ndarray
    train_rows: np.ndarray
    corpus_rows: np.ndarray
    exclude_self: bool


@dataclass(frozen=True)
class Protocol:
    """Leave-one-out with ``folds`` learning folds, or a fixed train/test split."""

    leave_one_out: bool = True
    folds: int = 5
    train: str = "train"
    test: str = "test"
    seed: int = 0

    def make_folds(self, queries: Sequence[LabeledQuery]) -> list[Fold]:
        if self.leave_one_out:
            return self._leave_one_out_folds(len(queries))
        return [self._split_fold(queries)]

    def _leave_one_out_folds(self, count: int) -> list[Fold]:
        if count < 2 * self.folds:
            raise ValueError(
                f"leave-one-out with {self.folds} folds needs >= {2 * self.folds} "
                f"queries, got {count}"
            )
        everything = np.arange(count)
        fold_of = np.random.default_rng(self.seed).permutation(count) % self.folds
        return [
            Fold(
                test_rows=everything[fold_of == f],
                train_rows=everything[fold_of != f],
                corpus_rows=everything,
                exclude_self=True,
            )
            for f in range(self.folds)
        ]

    def _split_fold(self, queries: Sequence[LabeledQuery]) -> Fold:
        splits = np.array([q.split for q in queries])
        train, test = np.flatnonzero(splits == self.train), np.flatnonzero(splits == self.test)
        if not len(train) or not len(test):
            raise ValueError(
                f"split needs rows with split {self.train!r} and {self.test!r}; "
                f"found {sorted(set(splits.tolist()))}"
            )
        return Fold(test_rows=test, train_rows=train, corpus_rows=train, exclude_self=False)
