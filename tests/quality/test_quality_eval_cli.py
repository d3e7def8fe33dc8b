"""``thoughtbank eval retrieval`` on a few hundred real queries: JSON, table, report, baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thoughtbank.cli import main
from thoughtbank.retriever.evaluation.dataset import Protocol, read_labeled_queries, write_sample
from thoughtbank.retriever.evaluation.retrieval import (
    EvalSettings,
    embed_corpus,
    evaluate_retrieval,
)

QUERIES = "fusionbench_14_task_queries.jsonl.gz"


@pytest.fixture(scope="module")
def sample_queries(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample(
        shared_data / QUERIES, tmp_path_factory.mktemp("q") / "q.jsonl", {"train": 16, "test": 4}
    )


def _eval_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["eval", "retrieval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_leave_one_out_with_baselines_and_report(
    sample_queries: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _eval_json(
        capsys,
        "--queries",
        str(sample_queries),
        "--baselines",
        "--k",
        "1,3",
        "--report",
        str(tmp_path),
    )
    assert set(result["baselines"]) == {"random", "bm25", "dense", "dense+bm25", "dense+task"}
    assert len(result["per_task"]) == 14
    assert result["count"] == 14 * 20
    dense, random = result["baselines"]["dense"], result["baselines"]["random"]
    assert random["p_at_3"] < 0.2 < dense["p_at_3"]
    assert result["p_at_3"] > dense["p_at_3"]  # task inference helps even from 16 per task
    inference = result["task_inference"]
    assert 0 < inference["accuracy"] <= 1
    assert 0 <= inference["calibration_error"] < 0.2  # confidences calibrated on inner folds
    assert (tmp_path / "retrieval_p_at_k.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "retrieval.json").read_text())["p_at_1"] == result["p_at_1"]


def test_train_test_split_with_the_label_is_perfect(
    sample_queries: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _eval_json(
        capsys,
        "--queries",
        str(sample_queries),
        "--train",
        "train",
        "--test",
        "test",
        "--task-label",
        "given",
    )
    assert result["count"] == 14 * 4
    assert result["p_at_1"] == result["p_at_3"] == 1.0
    assert "task_inference" not in result


@pytest.mark.slow
def test_progress_bars_only_when_asked(
    sample_queries: Path, embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = read_labeled_queries(sample_queries)
    corpus = embed_corpus(queries, embedder)
    capsys.readouterr()  # the model's own loading bar, if this loaded it
    settings = EvalSettings(protocol=Protocol(folds=2), baselines=True)
    quiet = evaluate_retrieval(corpus, queries, settings)
    assert capsys.readouterr().err == ""
    shown = evaluate_retrieval(corpus, queries, settings, progress=True)
    bars = capsys.readouterr().err
    assert "training task routers" in bars and "2/2" in bars
    assert "ranking" in bars and "12/12" in bars  # 6 methods x 2 folds
    assert shown.to_dict() == quiet.to_dict()


def test_table_output(sample_queries: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "retrieval", "--queries", str(sample_queries), "--train", "train"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["method", "P@1", "P@3"]
    assert "natural_qa" in table and "task inference accuracy" in table
    assert "calibration error (ECE)" in table


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"task_name": "a"}\n')
    assert main(["eval", "retrieval", "--queries", str(path)]) == 2
    assert "q.jsonl:1: missing query" in capsys.readouterr().err
