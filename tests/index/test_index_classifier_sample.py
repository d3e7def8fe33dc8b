"""The task classifier trains on a bounded, per-task sample of a large index."""

from __future__ import annotations

from collections import Counter

import numpy as np

from thoughtbank.index.builder import classifier_training_rows


def test_small_index_trains_on_every_template() -> None:
    tasks = ["a", "b", "a"]
    assert classifier_training_rows(tasks, limit=3).tolist() == [0, 1, 2]


def test_large_index_trains_on_a_seeded_per_task_sample() -> None:
    tasks = ["big"] * 900 + ["rare"] * 5 + ["mid"] * 95
    rows = classifier_training_rows(tasks, limit=90)
    assert Counter(tasks[i] for i in rows) == {"big": 30, "mid": 30, "rare": 5}
    assert np.array_equal(rows, np.sort(rows)) and len(set(rows.tolist())) == len(rows)
    assert np.array_equal(rows, classifier_training_rows(tasks, limit=90))
