"""``thoughtbank feedback``: import outcomes offline, read the estimates, retire and restore."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from thoughtbank.cli import main
from thoughtbank.templates import read_templates


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _stats(capsys: pytest.CaptureFixture[str], index_dir: Path, *extra: str) -> dict[str, dict]:
    code, out, _ = _run(capsys, "feedback", "stats", "--index", str(index_dir), "--json", *extra)
    assert code == 0
    return {row["id"]: row for row in json.loads(out)["templates"]}


def test_import_stats_retire_and_restore(
    demo_index: Path, demo_templates: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = Path(shutil.copytree(demo_index, tmp_path / "index"))
    templates = list(read_templates(demo_templates))
    harmful, helpful, other = templates[0], templates[1], templates[2]
    rows = [
        {"outcome_id": f"h{n}", "template_ids": [harmful.id], "score": 0.0, "baseline_score": 1.0}
        for n in range(40)
    ]
    rows += [{"outcome_id": f"g{n}", "template_ids": [helpful.id], "score": 1.0} for n in range(5)]
    lines = [json.dumps(r) for r in rows]
    lines[3:3] = [
        "{not json",
        json.dumps({"outcome_id": "x", "template_ids": ["nope"], "score": 0.5}),
        json.dumps({"outcome_id": "y", "template_ids": [other.id], "score": 7}),
    ]
    source = tmp_path / "outcomes.jsonl"
    source.write_text("\n".join(lines) + "\n")

    code, out, err = _run(capsys, "feedback", "record", str(source), "--index", str(index_dir))
    assert code == 0 and "recorded 45 outcomes; 0 were recorded before" in out
    assert [line.split(": skipped: ")[0] for line in err.splitlines()] == [
        f"{source}:4",
        f"{source}:5",
        f"{source}:6",
    ]
    assert "not in any index version" in err and "score must be a number" in err
    _, out, _ = _run(capsys, "feedback", "record", str(source), "--index", str(index_dir))
    assert "recorded 0 outcomes; 45 were recorded before" in out

    stats = _stats(capsys, index_dir)
    assert set(stats) == {t.id for t in templates}
    assert stats[harmful.id]["uses"] == 40 and stats[harmful.id]["retired"] is True
    assert stats[harmful.id]["lift"] < 0 < stats[helpful.id]["lift"]
    assert (stats[other.id]["uses"], stats[other.id]["mean_score"]) == (0, None)
    only_task = _stats(capsys, index_dir, "--task", helpful.task)
    assert only_task and {row["task"] for row in only_task.values()} == {helpful.task}

    assert _run(capsys, "feedback", "retire", other.id, "--index", str(index_dir))[0] == 0
    assert _run(capsys, "feedback", "restore", harmful.id, "--index", str(index_dir))[0] == 0
    stats = _stats(capsys, index_dir)
    assert stats[other.id]["retired"] is True and stats[harmful.id]["retired"] is False
    code, _, err = _run(capsys, "feedback", "retire", "nope", "--index", str(index_dir))
    assert code == 2 and "no version holds nope" in err
