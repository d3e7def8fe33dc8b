"""The mining job end to end: summary, determinism, journal and resume, leakage, merging."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from itertools import cycle
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import AIMessage
from mining_fakes import TEMPLATE_REPLY, SleepingChatModel, fake_model
from mining_logs import many_queries, query_rows, row, template_set, write_jsonl

from thoughtbank.templates import (
    ExtractiveDistiller,
    LeakagePolicy,
    MiningOptions,
    mine_templates,
    read_templates,
)
from thoughtbank.templates.chat import CallPolicy, ChatDistiller
from thoughtbank.templates.distill import Distillation, DistillRequest, LLMUsage
from thoughtbank.templates.journal import journal_path

FAST = CallPolicy(timeout_s=5, retries=0, backoff_s=0.001)


class FailingOnceDistiller(ExtractiveDistiller):
    """The extractive distiller, except that queries containing ``marker`` fail."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def distill(self, request: DistillRequest) -> Distillation:
        if self.marker in request.query:
            raise ConnectionError("model unreachable")
        return super().distill(request)


def hashed_embed(texts: Sequence[str]) -> np.ndarray:
    """Equal texts get equal vectors, different texts (nearly) orthogonal ones."""
    seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
    return np.stack([np.random.default_rng(s).standard_normal(64) for s in seeds])


@pytest.fixture
def log(tmp_path: Path) -> Path:
    rows = [*many_queries(6), row(query="Unanswerable?", query_id="u", performance=0.0)]
    return write_jsonl(tmp_path / "logs" / "log.jsonl", [*rows, "not json"])


def test_summary_and_output(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "templates.jsonl"
    summary = mine_templates([log], out, ExtractiveDistiller())
    assert summary.as_dict() == {
        "rows_read": 20,
        "rows_rejected": 1,
        "files_damaged": 0,
        "query_ids": 7,
        "groups": 7,
        "groups_resumed": 0,
        "groups_without_eligible_response": 1,
        "templates": 6,
        "merged": 0,
        "failed": 0,
        "leakage_flagged": 0,
        "leakage_dropped": 0,
        "llm_calls": 0,
        "input_tokens": None,
        "output_tokens": None,
    }
    templates = list(read_templates(out))
    assert sorted(t.source_query_ids for t in templates) == [(f"q{i}",) for i in range(1, 7)]
    assert [t.id for t in templates] == sorted(t.id for t in templates)
    first = templates[0]
    assert first.distiller == "extractive" and first.distiller_version == "4"
    assert [(s.llm, s.performance) for s in first.sources] == [("model-a", 1.0), ("model-b", 1.0)]
    assert json.loads((out.parent / "templates.jsonl.rejects").read_text())["line"] == 20
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "templates.jsonl",
        "templates.jsonl.journal",
        "templates.jsonl.rejects",
    ]


def test_output_is_deterministic_whatever_the_worker_count(log: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.jsonl"
    many = tmp_path / "many.jsonl"
    mine_templates([log], one, ExtractiveDistiller(), MiningOptions(workers=1))
    mine_templates([log], many, ExtractiveDistiller(), MiningOptions(workers=4))
    assert template_set(one) == template_set(many)
    assert [t.id for t in read_templates(one)] == [t.id for t in read_templates(many)]


def test_failed_groups_are_recorded_and_retried_on_resume(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "templates.jsonl"
    first = mine_templates([log], out, FailingOnceDistiller("Sam packs 3 "))
    assert first.failed == 1 and first.templates == 5
    assert "ConnectionError: model unreachable" in first.failures[0]
    resumed = mine_templates([log], out, ExtractiveDistiller(), MiningOptions(resume=True))
    assert (resumed.groups_resumed, resumed.failed, resumed.templates) == (6, 0, 6)
    uninterrupted = tmp_path / "uninterrupted.jsonl"
    mine_templates([log], uninterrupted, ExtractiveDistiller())
    assert template_set(out) == template_set(uninterrupted)


def test_resume_cuts_a_torn_last_line(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "templates.jsonl"
    mine_templates([log], out, ExtractiveDistiller())
    journal = journal_path(out)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:4]) + lines[4][:30])
    summary = mine_templates([log], out, ExtractiveDistiller(), MiningOptions(resume=True))
    assert (summary.groups_resumed, summary.templates) == (3, 6)
    assert all(json.loads(line) for line in journal.read_text().splitlines())


def test_resume_refuses_a_journal_of_another_job(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "templates.jsonl"
    mine_templates([log], out, ExtractiveDistiller(), MiningOptions(top_n=3))
    with pytest.raises(ValueError, match="run without --resume"):
        mine_templates([log], out, ExtractiveDistiller(), MiningOptions(top_n=2, resume=True))


def test_pitfalls_from_failed_responses(tmp_path: Path) -> None:
    rows = many_queries(3)
    for failed in rows[2::3]:
        failed["response"] = "Add the boxes to the pens per box instead.\n#### 1"
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    out = tmp_path / "templates.jsonl"
    mine_templates([log], out, ExtractiveDistiller(), MiningOptions(pitfalls=True))
    pitfalls = [t.pitfalls for t in read_templates(out)]
    assert len(pitfalls) == 3
    assert all(
        p.startswith(
            "1 logged response(s) to this query failed; one reasoned 'Add the "
            "boxes to the pens per box instead.'"
        )
        for p in pitfalls
    )


@pytest.mark.parametrize("policy", list(LeakagePolicy))
def test_leaking_template_is_asked_again_then_flagged_or_dropped(
    tmp_path: Path, policy: LeakagePolicy
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", query_rows(1) + query_rows(2))
    leaky = TEMPLATE_REPLY.replace("End with '#### <number>'.", "The answer is 3.")
    distiller = ChatDistiller(fake_model(leaky), "leaky", FAST)
    out = tmp_path / "templates.jsonl"
    summary = mine_templates([log], out, distiller, MiningOptions(leakage=policy))
    assert summary.llm_calls == 3  # q1 (answer 3) is asked twice, q2 (answer 8) once
    if policy is LeakagePolicy.FLAG:
        flagged = [t for t in read_templates(out) if t.flags]
        assert [t.flags for t in flagged] == [("ground truth: '3'",)]
        assert (summary.templates, summary.leakage_flagged) == (2, 1)
    else:
        assert (summary.templates, summary.leakage_dropped) == (1, 1)


def test_distilled_texts_lose_control_characters_and_escape_sequences(tmp_path: Path) -> None:
    reply = json.loads(TEMPLATE_REPLY)
    reply["task_summary"] = "\x1b]0;owned\x07Solve a word\u200b problem\x1b[2J."
    reply["reasoning_steps"] = ["List the\u202e quantities.\x9b31m", "Combine\r\nthem."]
    reply["pitfalls"] = "Do not\x1b[31m forget\x07 a quantity."
    log = write_jsonl(tmp_path / "log.jsonl", query_rows(1))
    distiller = ChatDistiller(fake_model(json.dumps(reply)), "hostile", FAST)
    out = tmp_path / "templates.jsonl"
    mine_templates([log], out, distiller, MiningOptions(pitfalls=True))
    (template,) = read_templates(out)
    assert template.fields is not None
    assert template.fields.task_summary == "Solve a word problem."
    assert template.fields.reasoning_steps == ("List the quantities.", "Combine\nthem.")
    assert template.pitfalls == "Do not forget a quantity."
    assert template.text == template.fields.render()


def test_chat_distiller_runs_concurrently_and_counts_calls(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(16))
    model = SleepingChatModel(messages=cycle([AIMessage(TEMPLATE_REPLY)]), delay_s=0.05)
    distiller = ChatDistiller(model, "sleepy", FAST)
    summary = mine_templates([log], tmp_path / "t.jsonl", distiller, MiningOptions(workers=8))
    assert (summary.templates, summary.llm_calls, summary.failed) == (16, 16, 0)
    assert distiller.usage() == LLMUsage(calls=16)


def test_near_duplicates_merge_per_task_keeping_provenance(tmp_path: Path) -> None:
    rows = many_queries(4) + many_queries(2, task="other_task")
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    out = tmp_path / "templates.jsonl"
    summary = mine_templates([log], out, ExtractiveDistiller(), embed=hashed_embed)
    templates = list(read_templates(out))
    assert (summary.templates, summary.merged) == (2, 4)
    gsm8k = next(t for t in templates if t.task == "gsm8k")
    assert gsm8k.source_query_ids == ("q1", "q2", "q3", "q4")
    assert len(gsm8k.merged_queries) == 3 and gsm8k.source_query not in gsm8k.merged_queries
    assert len(gsm8k.sources) == 8
    again = tmp_path / "again.jsonl"
    mine_templates(
        [log], again, ExtractiveDistiller(), MiningOptions(workers=3), embed=hashed_embed
    )
    assert template_set(out) == template_set(again)


def test_merging_with_the_real_embedder_keeps_distinct_templates(tmp_path: Path, embedder) -> None:
    code = row(
        query="Write a function that reverses a string.",
        query_id="code",
        response="def rev(s):\n    return s[::-1]",
    )
    rows = [*many_queries(3), code]
    log = write_jsonl(tmp_path / "log.jsonl", rows)
    summary = mine_templates(
        [log], tmp_path / "t.jsonl", ExtractiveDistiller(), embed=embedder.encode
    )
    assert (summary.templates, summary.merged) == (2, 2)
