"""The mining job on the real logs in ``../shared/data`` (skipped where that folder is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from thoughtbank.cli import main
from thoughtbank.templates import read_templates
from thoughtbank.templates.readers import RejectSink, iter_log_records


def _comparable(path: Path) -> list[tuple]:
    sink = RejectSink()
    rows = sorted(
        (r.task_name, r.query_id, r.query, r.llm, r.response, r.performance)
        for r in iter_log_records([path], sink)
    )
    assert (sink.count, sink.damaged_files) == (0, 0)
    return rows


@pytest.mark.slow
def test_mmlu_pro_summary_matches_the_data(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "templates.jsonl"
    log = shared_data / "mmlu_pro_29_models.jsonl.gz"
    assert main(["mine", str(log), "--out", str(out), "--no-merge", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # 1,400 questions x 29 models; two questions are repeated verbatim under a second id
    # (mmlu_pro-6119/6120 and 6240/6241), so they form 1,398 groups; 78 have no correct answer.
    assert summary == {
        "rows_read": 40600,
        "rows_rejected": 0,
        "files_damaged": 0,
        "query_ids": 1400,
        "groups": 1398,
        "groups_resumed": 0,
        "groups_without_eligible_response": 78,
        "templates": 1320,
        "merged": 0,
        "failed": 0,
        "leakage_flagged": 0,
        "leakage_dropped": 0,
        "llm_calls": 0,
        "input_tokens": None,
        "output_tokens": None,
    }
    templates = list(read_templates(out))
    assert len({t.id for t in templates}) == 1320
    merged_ids = sorted(t.source_query_ids for t in templates if len(t.source_query_ids) > 1)
    assert merged_ids == [("mmlu_pro-6119", "mmlu_pro-6120"), ("mmlu_pro-6240", "mmlu_pro-6241")]
    assert all(t.sources and all(s.performance == 1.0 for s in t.sources) for t in templates)


@pytest.mark.slow
def test_fusionbench_csv_layout_reads_the_same_rows_as_the_jsonl(shared_data: Path) -> None:
    csv_rows = _comparable(shared_data / "gsm8k_fusionbench_layout.csv")
    assert len(csv_rows) == 7914
    assert csv_rows == _comparable(shared_data / "gsm8k_6_models.jsonl.gz")
