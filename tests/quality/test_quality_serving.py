"""Task inference and calibrated decline as served, and ``eval e2e``/``eval calibrate``.

The index is built from the demo templates (4 tasks), so its task classifier is trained at
build time like any user's; the server is a real subprocess.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from thoughtbank.cli import main
from thoughtbank.index import build_index, load_index
from thoughtbank.index.artifact import set_min_scores
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.evaluation.calibrate import NEVER_SERVE
from thoughtbank.retriever.evaluation.e2e import read_rows
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.retriever.types import RetrievalQuery
from thoughtbank.templates import read_templates

GSM8K_QUERY = (
    "Leo buys 5 crates of pears with 18 pears in each crate and gives away 7. "
    "How many pears does Leo have left?"
)


@pytest.fixture(scope="module")
def index_dir(demo_templates: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("quality-index")
    build_index(list(read_templates(demo_templates)), folder, embedder)
    return folder


def test_build_stores_a_checksummed_classifier_and_retrieval_predicts_the_task(
    index_dir: Path, embedder
) -> None:
    loaded = load_index(index_dir)
    assert {"task_classifier.npz", "task_classifier.json"} <= set(loaded.manifest.files)
    assert set(loaded.task_classifier.classes) == set(loaded.manifest.task_counts)
    retriever = RetrievalEngine(loaded, embedder)
    result = retriever.retrieve(RetrievalQuery(GSM8K_QUERY, k=3))
    assert result.predicted_task == "gsm8k" and 0.3 <= result.predicted_task_confidence <= 1
    assert [h.template.task for h in result.hits] == ["gsm8k"] * 3
    named = retriever.retrieve(RetrievalQuery(GSM8K_QUERY, k=1, task="mbpp"))
    assert named.predicted_task == "" and named.hits[0].template.task == "mbpp"


def _queries_file(folder: Path) -> Path:
    rows = [
        {
            "task_name": "gsm8k",
            "query": f"{GSM8K_QUERY} ({n})",
            "ground_truth": "#### 42",
            "metric": "GSM8K",
            "split": "test",
        }
        for n in range(4)
    ]
    rows.append(
        {
            "task_name": "mbpp",
            "query": "Write a function to add two numbers.",
            "ground_truth": "assert add(1, 2) == 3",
            "metric": "code_eval",
            "split": "test",
        }
    )
    path = folder / "queries.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_e2e_reports_the_change_and_calibration_declines_where_templates_hurt(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = _queries_file(tmp_path)
    common = ["eval", "e2e", "--queries", str(queries), "--index", str(index_dir), "--json"]
    helped = _run_json(capsys, *common, "--llm", "python:quality_fakes:helped_model")
    assert helped["skipped"] == 1
    gsm8k = helped["tasks"]["gsm8k"]
    assert (gsm8k["count"], gsm8k["without"], gsm8k["with_templates"]) == (4, 0.0, 1.0)
    assert gsm8k["change_low"] == gsm8k["change_high"] == 1.0

    results = tmp_path / "hurt.jsonl"
    hurt = _run_json(
        capsys, *common, "--llm", "python:quality_fakes:hurt_model", "--out", str(results)
    )
    assert hurt["tasks"]["overall"]["change"] == -1.0
    calibrated = _run_json(
        capsys, "eval", "calibrate", "--index", str(index_dir), "--e2e", str(results)
    )
    assert calibrated["min_scores"] == {"gsm8k": NEVER_SERVE}
    assert load_index(index_dir).manifest.min_scores == {"gsm8k": NEVER_SERVE}
    _replay_as_outcomes(results, index_dir, tmp_path, capsys)


def _replay_as_outcomes(
    results: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each answered row becomes one outcome of its templates, scored against the answer
    without them; replaying the same results again counts nothing twice."""
    replayed = shutil.copytree(index_dir, tmp_path / "replayed")
    replay = ["eval", "replay", str(results), "--index", str(replayed)]
    assert main(replay) == 0
    assert "recorded 4 outcomes; 0 were recorded before" in capsys.readouterr().out
    assert main(replay) == 0
    assert "recorded 0 outcomes; 4 were recorded before" in capsys.readouterr().out
    with OutcomeStore(replayed) as store:
        (stats,) = store.template_outcomes([read_rows(results)[0].template_ids[0]])
    assert stats.mean_score == 0.0 and stats.mean_lift_vs_baseline == -1.0
    from_outcomes = _run_json(capsys, "eval", "calibrate", "--index", str(replayed), "--feedback")
    assert from_outcomes["min_scores"] == {"gsm8k": NEVER_SERVE}


def test_calibrating_from_feedback_needs_outcomes(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = shutil.copytree(index_dir, tmp_path / "fresh")
    assert main(["eval", "calibrate", "--index", str(fresh), "--feedback"]) != 0
    assert "no outcomes recorded yet" in capsys.readouterr().err


def test_margin_calibration_needs_no_llm(
    index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calibrated = _run_json(
        capsys, "eval", "calibrate", "--index", str(index_dir), "--wrong-task-cost", "1000"
    )
    manifest = load_index(index_dir).manifest
    assert manifest.min_scores == calibrated["min_scores"]
    assert all(0 < score <= NEVER_SERVE for score in manifest.min_scores.values())


def test_server_applies_calibrated_minimums_only_without_a_request_min_score(
    index_dir: Path,
) -> None:
    from thoughtbank.retriever.serving.process import ServerProcess

    set_min_scores(index_dir, load_index(index_dir).version, {"gsm8k": NEVER_SERVE})
    with ServerProcess(index_dir) as server, ThoughtbankClient(server.address) as client:
        declined = client.retrieve(GSM8K_QUERY, k=3)
        explicit = client.retrieve(RetrievalQuery(GSM8K_QUERY, k=3, min_score=0.0))
    assert declined.predicted_task == "gsm8k"
    assert "gsm8k" not in {h.template.task for h in declined.hits}
    assert [h.template.task for h in explicit.hits] == ["gsm8k"] * 3
