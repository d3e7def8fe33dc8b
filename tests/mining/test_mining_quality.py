"""The template quality battery on small logs, and through ``thoughtbank eval templates``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mining_logs import row, write_jsonl

from thoughtbank.cli import main
from thoughtbank.templates.quality import evaluate_template_file, is_degenerate_step
from thoughtbank.templates.schema import TemplateFields, ThoughtTemplate
from thoughtbank.templates.store import write_templates

APPLES = (
    "Where do apples form on an apple tree?\n(A) south africa\n(B) sunshine\n(C) new york\n"
    "(D) bloom\n(E) palm"
)


def _template(
    task: str, query: str, query_id: str, summary: str, steps: tuple[str, ...], answer_format: str
) -> ThoughtTemplate:
    fields = TemplateFields(summary, steps, answer_format)
    return ThoughtTemplate(
        id=query_id,
        task=task,
        text=fields.render(),
        source_query=query,
        source_models=("m",),
        source_query_ids=(query_id,),
        fields=fields,
    )


def _logs(tmp_path: Path) -> Path:
    rows = [
        row(
            APPLES,
            llm,
            1.0,
            task_name="csqa",
            query_id="c1",
            ground_truth="D",
            metric="em_mc",
            response="\\boxed{D} Bloom",
        )
        for llm in ("m1", "m2")
    ]
    rows += [
        row(
            f"Sam has {i} pens and buys {i + 1}. How many pens?",
            "m",
            1.0,
            query_id=f"g{i}",
            ground_truth=str(2 * i + 1),
            metric="GSM8K",
            response=f"Let's think step by step.\nSam adds {i} and {i + 1}.\n#### {2 * i + 1}",
        )
        for i in range(1, 9)
    ]
    return write_jsonl(tmp_path / "log.jsonl", rows)


def _templates(tmp_path: Path) -> Path:
    good = [
        _template(
            "gsm8k",
            f"Sam has {i} pens and buys {i + 1}. How many pens?",
            f"g{i}",
            "How many items after a purchase.",
            ("Add the items bought to the items owned.",),
            "End with '#### <number>' giving the final numeric answer.",
        )
        for i in range(2, 9)
    ]
    bad_gsm8k = _template(
        "gsm8k",
        "Sam has 1 pens and buys 2. How many pens?",
        "g1",
        "Solve it.",
        ("Let's think step by step.", "N + N = <<N+N=N>>N", "So it is 3."),
        "State the final answer plainly on the last line.",
    )
    bad_csqa = _template(
        "csqa",
        APPLES,
        "c1",
        "(A) south africa (B) sunshine (D) bloom",
        ("\\boxed{D} Bloom",),
        "Put the final answer in \\boxed{}.",
    )
    orphan = _template("csqa", "A query no log has", "zz", "S.", ("Think.",), "")
    path = tmp_path / "t.jsonl"
    write_templates(path, [*good, bad_gsm8k, bad_csqa, orphan])
    return path


def test_battery_counts_each_defect(tmp_path: Path) -> None:
    report = evaluate_template_file(_templates(tmp_path), [_logs(tmp_path)]).to_dict()
    csqa, gsm8k = report["per_task"]["csqa"], report["per_task"]["gsm8k"]
    assert report["unmatched_templates"] == 1
    assert csqa == {
        "templates": 1,
        "leak_rate": 1.0,
        "boilerplate_rate": 0.0,
        "option_in_summary_rate": 1.0,
        "degenerate_step_rate": 0.0,
        "wrong_answer_format_rate": 1.0,
        "copied_query_span_rate": 0.0,
        "mean_steps": 1.0,
        "mean_chars": csqa["mean_chars"],
    }
    assert gsm8k["templates"] == 8
    for rate in (
        "leak_rate",
        "boilerplate_rate",
        "degenerate_step_rate",
        "wrong_answer_format_rate",
    ):
        assert gsm8k[rate] == pytest.approx(1 / 8), rate
    assert gsm8k["option_in_summary_rate"] == 0.0
    assert gsm8k["mean_steps"] == pytest.approx((7 + 3) / 8)
    assert report["overall"]["templates"] == 9
    assert report["overall"]["leak_rate"] == pytest.approx(2 / 9)
    assert len(report["samples"]["gsm8k"]) == 3


@pytest.mark.parametrize(
    ("step", "degenerate"),
    [
        ("N - N = <<N-N=N>>N", True),
        ("\\boxed{D}", True),
        ("So it is the N of X.", True),
        ("Subtract the eggs used from the eggs laid.", False),
        ("\\boxed{D} Bloom", False),
    ],
)
def test_degenerate_steps(step: str, degenerate: bool) -> None:
    assert is_degenerate_step(step) is degenerate


def test_eval_templates_command_prints_a_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates, logs = _templates(tmp_path), _logs(tmp_path)
    assert main(["eval", "templates", str(templates), "--logs", str(logs)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["task", "n", "leak"]
    assert any(line.startswith("overall") for line in table.splitlines())
    assert main(["eval", "templates", str(templates), "--logs", str(logs), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) >= {"overall", "per_task"}
    assert figures["overall"]["option_in_summary_rate"] == pytest.approx(1 / 9)
