"""Boilerplate learned from the data, and the task profiles a mining run learns first."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from thoughtbank.templates.answer_format import AnswerFormat
from thoughtbank.templates.boilerplate import Boilerplate, learn_boilerplate
from thoughtbank.templates.readers import RejectSink, iter_log_records
from thoughtbank.templates.schema import LogRecord
from thoughtbank.templates.selection import QueryGroup
from thoughtbank.templates.spool import GroupSpool
from thoughtbank.templates.task_profile import SAMPLE_QUERIES, learn_task_profiles


def _economics_responses(count: int) -> list[list[str]]:
    return [
        [
            f"Let's think step by step. We refer to Wikipedia articles on economics for help. "
            f"A tax of {i} dollars shifts supply by {i} units of good {i}.\nThe answer is "
            f"({'ABCD'[i % 4]})."
        ]
        for i in range(count)
    ]


def test_sentences_shared_across_queries_are_boilerplate_and_method_sentences_are_not() -> None:
    responses = _economics_responses(20)
    responses += [
        [f"The total number of {noun} is 3 + 4 = 7.\n#### 7"]
        for noun in ("apples", "pens", "eggs", "cars", "books", "ducks")
    ]
    boilerplate = learn_boilerplate(responses)
    text = (
        "We refer to Wikipedia articles on economics for help. A price floor raises N.\n"
        "The total number of hats is N + N = N.\nThe answer is (C).\n#### N"
    )
    assert boilerplate.find(text) == [
        "We refer to Wikipedia articles on economics for help.",
        "The answer is (C).",
        "#### N",
    ]
    assert boilerplate.strip(text) == (
        "A price floor raises N.\nThe total number of hats is N + N = N."
    )


def test_rare_sentences_and_bare_equations_are_not_learned() -> None:
    responses = [["So 3 + 4 = 7.", f"Each box holds {i} pens.", "3 + 4 = 7"] for i in range(30)]
    responses += [["Combining like terms, we get:"]] * 1
    boilerplate = learn_boilerplate(responses)
    assert boilerplate.find("Combining like terms, we get:\nN + N = N") == []
    assert boilerplate.find("Each box holds N pens.") == ["Each box holds N pens."]


def test_known_prompt_phrases_are_boilerplate_without_learning() -> None:
    text = (
        "Let's think step by step. We refer to Wikipedia articles on world history for help. "
        "Compare the dates. Let's break down the problem step by step."
    )
    assert Boilerplate().strip(text) == "Compare the dates."
    assert len(Boilerplate().find(text)) == 3


def _group(
    task: str,
    index: int,
    response: str,
    metric: str = "",
    ground_truth: str = "",
    performance: float = 1.0,
) -> QueryGroup:
    query = f"Question {index} about {task}?"
    record = LogRecord(
        task,
        query,
        "m",
        response,
        performance,
        f"q{index}",
        ground_truth=ground_truth,
        metric=metric,
    )
    return QueryGroup(task, query, (record,))


def test_profiles_per_task_from_a_bounded_sample_in_any_order() -> None:
    groups = [
        _group("gsm8k", i, f"Tom has {i} pens.\nA: {i}", "numeric_em", str(i))
        for i in range(SAMPLE_QUERIES + 50)
    ]
    groups += [_group("csqa", i, "Lets see. \\boxed{B} mexico", "em", "B") for i in range(10)]
    groups += [_group("csqa", 99, "A failed guess. \\boxed{C}", "em", "B", performance=0.0)]
    profiles = learn_task_profiles(groups)
    assert profiles == learn_task_profiles(reversed(groups))
    assert sorted(profiles) == ["csqa", "gsm8k"]
    gsm8k, csqa = profiles["gsm8k"], profiles["csqa"]
    assert (gsm8k.metric, gsm8k.answer_format) == ("numeric_em", AnswerFormat.HASH_NUMBER)
    assert gsm8k.boilerplate.find("A: N") == ["A: N"]
    assert csqa.answer_format is AnswerFormat.CHOICE_LETTER  # boxed letters are choices
    assert csqa.boilerplate.find("A failed guess.") == []


@pytest.mark.slow
def test_boilerplate_of_the_real_logs(shared_data: Path, tmp_path: Path) -> None:
    logs = [shared_data / "gsm8k_6_models.jsonl.gz", shared_data / "mmlu_pro_29_models.jsonl.gz"]
    with GroupSpool(tmp_path) as spool:
        spool.add_all(iter_log_records(logs, RejectSink()))
        groups = list(spool.groups())
    started = time.perf_counter()
    profiles = learn_task_profiles(groups)
    assert time.perf_counter() - started < 10  # a second or two on one core
    gsm8k = profiles["gsm8k"].boilerplate
    assert gsm8k.find("A: N\n#### N") == ["A: N", "#### N"]
    assert not any("total number" in segment for segment in gsm8k.segments)
    economics = profiles["mmlu_pro/economics"]
    assert economics.answer_format is AnswerFormat.CHOICE_LETTER
    assert economics.boilerplate.find(
        "We refer to Wikipedia articles on microeconomics for help. Demand falls.\n"
        "Therefore, the answer is (B)."
    ) == [
        "We refer to Wikipedia articles on microeconomics for help.",
        "Therefore, the answer is (B).",
    ]
