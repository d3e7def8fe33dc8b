"""The extractive distiller, pitfalls and the leakage guard."""

from __future__ import annotations

import pytest

from thoughtbank.templates.answer_format import AnswerFormat
from thoughtbank.templates.boilerplate import Boilerplate
from thoughtbank.templates.distill import DistillRequest, ExtractiveDistiller
from thoughtbank.templates.fusion import answered_part
from thoughtbank.templates.leakage import LeakageGuard, ground_truth_pattern, mask_leaks
from thoughtbank.templates.schema import LogRecord
from thoughtbank.templates.task_profile import TaskProfile

QUERY = (
    "Janet has 16 eggs. She eats 3 for breakfast and bakes muffins with 4 every day. "
    "How much in dollars does Janet make every day at the farmers' market?"
)
RESPONSE = (
    "Janet has 16 eggs.\nShe uses 3 + 4 = 7 of them.\nShe sells 16 - 7 = 9 eggs.\n"
    "At $2 each she makes 9 * 2 = 18 dollars.\n#### 18"
)


def response(text: str = RESPONSE, llm: str = "m", performance: float = 1.0) -> LogRecord:
    return LogRecord("gsm8k", QUERY, llm, text, performance, ground_truth="18")


def test_extractive_template_is_abstract_and_deterministic() -> None:
    request = DistillRequest("gsm8k", QUERY, (response(),))
    first = ExtractiveDistiller().distill(request)
    assert first == ExtractiveDistiller().distill(request)
    assert first.fields.task_summary == (
        "Solve a gsm8k problem: How much in dollars does X make every day at the ..."
    )
    assert first.fields.reasoning_steps == (
        "Name the quantities the question gives: [eggs], [breakfast], [day].",
        "She uses [breakfast] + [day] = [result] of them.",
        "She sells [eggs] - [result] = [eggs 2].",
        "At $2 each she makes [eggs 2] * 2 = [dollars].",
    )
    assert first.fields.answer_format == "End with '#### <number>' giving the final numeric answer."
    assert first.pitfalls == ""
    assert LeakageGuard().find(first.fields.render(), QUERY, "18") == ()


def test_steps_come_from_every_selected_response() -> None:
    other = response(
        "She uses 3+4=<<3+4=7>>7 eggs a day.\nShe has 16-7=<<16-7=9>>9 eggs left.\n"
        "She makes 9*2=<<9*2=18>>18 dollars.\nA: 18",
        llm="m2",
    )
    request = DistillRequest("gsm8k", QUERY, (other, response()))
    fields = ExtractiveDistiller().distill(request).fields
    assert fields.reasoning_steps[1:] == (
        "She uses [breakfast]+[day]=[eggs a day].",
        "She has [eggs]-[eggs a day]=[eggs 2] left.",
        "She makes [eggs 2]*2=[dollars].",
    )
    assert not any("<<" in step or "A:" in step for step in fields.reasoning_steps)


def test_pitfalls_note_from_failed_responses() -> None:
    failed = response("She has 16 eggs and sells all of them.\n#### 32", "weak", 0.0)
    note = (
        ExtractiveDistiller()
        .distill(DistillRequest("gsm8k", QUERY, (response(),), failed=(failed,)))
        .pitfalls
    )
    assert note.startswith(
        "1 logged response(s) to this query failed; one reasoned "
        "'She has [eggs] and sells all of them.'"
    )
    assert "32" not in note


@pytest.mark.parametrize(
    ("ground_truth", "text", "leaked"),
    [
        ("B", "Pick the option. The answer is (B).", "answer is (B)"),
        ("B", "Option (B) fits.", "Option (B)"),
        ("B", "The answer is B because", "answer is B"),
        ("B", "Bears and Bees: compare both options.", None),
        ("18", "So she makes 18 dollars.", "18"),
        ("18", "She makes 180 dollars or 1.18 or 18.5.", None),
        ("8", "Solve a gsm8k problem.", None),
        ("1,200", "The total is 1200.", "1200"),
        ("Paris", "The capital is paris.", "paris"),
        ("Paris", "Parisian food is good.", None),
        ("", "anything", None),
    ],
)
def test_ground_truth_leaks(ground_truth: str, text: str, leaked: str | None) -> None:
    leaks = LeakageGuard().find(text, "unrelated query words", ground_truth)
    assert [leak.text for leak in leaks] == ([leaked] if leaked else [])
    assert all(leak.kind == "ground truth" for leak in leaks)


def test_long_query_spans_leak_and_short_ones_do_not() -> None:
    guard = LeakageGuard(max_query_span_words=5)
    copied = "Reason: how much in dollars does Janet make every day, then answer."
    leaks = guard.find(copied + "\nAgain: how much in dollars does Janet make", QUERY, "")
    assert [leak.text for leak in leaks] == [
        "how much in dollars does janet make every day",
        "how much in dollars does janet make",
    ]
    assert guard.find("how much in dollars does", QUERY, "") == ()
    assert mask_leaks(copied, leaks[:1]) == "Reason: ..., then answer."


def test_extractive_masks_leaks_when_asked_again() -> None:
    leaky = response("Janet makes 18 dollars a day.\nThe answer is 18 dollars.\n#### 18")
    request = DistillRequest("gsm8k", QUERY, (leaky,))
    first = ExtractiveDistiller().distill(request)
    guard = LeakageGuard(max_query_span_words=4)
    leaks = guard.find(first.fields.render(), QUERY, "")
    assert leaks
    again = ExtractiveDistiller().distill(DistillRequest("gsm8k", QUERY, (leaky,), avoid=leaks))
    assert guard.find(again.fields.render(), QUERY, "") == ()
    assert "..." in again.fields.task_summary


def test_number_pattern_ignores_currency_and_percent_marks() -> None:
    assert ground_truth_pattern("$18") == ground_truth_pattern("18")
    assert ground_truth_pattern("  ") is None


def test_masking_removes_a_leak_nested_in_another() -> None:
    query = "Which is right? J. Indiscriminate use of antibiotics selects resistant bacteria"
    text = 'Option J, "Indiscriminate use of antibiotics selects resistant bacteria" fits.'
    guard = LeakageGuard(max_query_span_words=4)
    leaks = guard.find(text, query, "J")
    assert sorted(leak.kind for leak in leaks) == ["ground truth", "query span"]
    assert mask_leaks(text, leaks) == 'Option ..." fits.'
    assert guard.find(mask_leaks(text, leaks), query, "J") == ()


HISTORY_QUERY = (
    "This question refers to the following information. The Bandung Conference of 1955 "
    "gathered leaders of new nations. Which aim of those leaders does the conference show?\n"
    "A. Neutrality between the blocs. It was kept by the newly independent nations.\n"
    "B. Trade alliances with the European powers\n"
    "C. Military pacts with either bloc\n"
    "D. Colonial rule over their neighbours"
)
HISTORY_RESPONSE = (
    "II. The conference brought leaders of newly independent nations together.\n"
    "C. Military pacts with either bloc is wrong since they wanted to stay out of conflicts.\n"
    "Their speeches called for peace between the superpowers.\n"
    "It was kept by the newly independent nations.\n"
    "The answer is (A)."
)


def test_choice_steps_drop_weighed_options_and_the_gold_option_sentences() -> None:
    profile = TaskProfile("mmlu_pro/history", "em_mc", AnswerFormat.CHOICE_LETTER, Boilerplate())
    record = LogRecord("mmlu_pro/history", HISTORY_QUERY, "m", HISTORY_RESPONSE, 1.0, "A")
    request = DistillRequest("mmlu_pro/history", HISTORY_QUERY, (record,), profile=profile)
    fields = ExtractiveDistiller().distill(request).fields
    assert fields.task_summary == (
        "Solve a history problem: Which aim of those leaders does the conference show"
    )
    assert fields.reasoning_steps == (
        "The conference brought leaders of newly independent nations together.",
        "Their speeches called for peace between the superpowers.",
        "Choose the option that matches this reasoning.",
    )


def test_a_made_up_next_question_after_the_answer_gives_no_steps() -> None:
    run_on = (
        "Employee duties are what workers owe their employer under their contracts.\n"
        "The answer is (G).\n\nQuestion:\nThe process of selecting candidates is known as:\n"
        "Options:\nA. Recruitment.\nB. Selection.\nAnswer: Recruitment finds the candidates."
    )
    assert answered_part(run_on) == (
        "Employee duties are what workers owe their employer under their contracts.\n"
        "The answer is (G)."
    )
    assert answered_part("3 + 4 = 7\n#### 7\nQuestion: next") == "3 + 4 = 7\n#### 7"
