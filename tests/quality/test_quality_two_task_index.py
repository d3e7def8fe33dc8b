"""The issue's two-task index: GSM8K and CommonsenseQA rows of the reread log, mined and built
as a user would, route each task's queries to it (a binary classifier once sent all of them to
commonsenseqa with confidence 1.0)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from thoughtbank.cli import main
from thoughtbank.index import build_index, load_index
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.retriever.types import RetrievalQuery
from thoughtbank.templates import read_templates

LOG = "reread_3_models_gsm8k_csqa_svamp.jsonl.gz"
TASKS = ("gsm8k", "commonsenseqa")
QUERIES_PER_TASK = 150
PROBES = {
    "Tom has 5 apples and buys 7 more. How many apples does he have?": "gsm8k",
    "Where would you put a plate after washing it? (A) cupboard (B) floor (C) oven "
    "(D) garden (E) car": "commonsenseqa",
}


def _two_task_log(source: Path, out: Path) -> Path:
    """The first ``QUERIES_PER_TASK`` queries of each of ``TASKS``, every model's row kept."""
    kept: dict[str, set[str]] = {task: set() for task in TASKS}
    with gzip.open(source, "rt", encoding="utf-8") as rows, out.open("w") as handle:
        for line in rows:
            row = json.loads(line)
            queries = kept.get(row["task_name"])
            if queries is None or (
                row["query"] not in queries and len(queries) == QUERIES_PER_TASK
            ):
                continue
            queries.add(row["query"])
            handle.write(line)
    return out


@pytest.mark.slow
def test_a_two_task_index_routes_each_task_to_itself(
    shared_data: Path, tmp_path: Path, embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _two_task_log(shared_data / LOG, tmp_path / "two_tasks.jsonl")
    templates_path = tmp_path / "templates.jsonl"
    assert main(["mine", str(log), "--out", str(templates_path), "--no-progress"]) == 0
    capsys.readouterr()
    manifest = build_index(list(read_templates(templates_path)), tmp_path / "index", embedder)

    routing = manifest.task_routing
    assert routing is not None and routing.unrouted == ()
    assert set(routing.recall) == set(TASKS) and min(routing.recall.values()) >= 0.95
    engine = RetrievalEngine(load_index(tmp_path / "index"), embedder)
    for query, task in PROBES.items():
        result = engine.retrieve(RetrievalQuery(query, k=3))
        assert result.predicted_task == task, query
        assert result.predicted_task_confidence > 0.5
        assert {hit.template.task for hit in result.hits} == {task}
