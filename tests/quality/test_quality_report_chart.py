"""``eval retrieval --report``'s chart: a fixed, readable width; height grows with the tasks."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from thoughtbank.retriever.evaluation.metrics import build_report
from thoughtbank.retriever.evaluation.report import CHART_FILE, write_report
from thoughtbank.retriever.evaluation.retrieval import RetrievalEvaluation

METHODS = ("random", "bm25", "dense", "dense+bm25", "dense+task", "thoughtbank")


def chart_size(folder: Path, task_count: int, methods: tuple[str, ...]) -> tuple[int, int]:
    """Width and height in pixels of the chart of ``task_count`` tasks x ``methods``."""
    tasks = np.array([f"task_{i:02d}" for i in range(task_count) for _ in range(3)], dtype=object)
    rng = np.random.default_rng(0)
    reports = {
        name: build_report(name, rng.choice(np.unique(tasks), (len(tasks), 3)), tasks, (1, 3))
        for name in methods
    }
    write_report(RetrievalEvaluation(reports, None, None, None), folder, 3)
    png = (folder / CHART_FILE).read_bytes()
    assert png[:4] == b"\x89PNG"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_chart_of_fourteen_tasks_and_six_methods_stays_readable(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    wide_width, wide_height = chart_size(tmp_path / "fourteen", 14, METHODS)
    small_width, small_height = chart_size(tmp_path / "two", 2, ("thoughtbank",))
    assert wide_width == small_width == 1000  # was 6,300 px for 14 tasks x 6 methods
    assert small_height < 400 < 1000 < wide_height < 1600
