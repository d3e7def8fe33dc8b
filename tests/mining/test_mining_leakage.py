"""The answer-aware leakage guard on the forms answers leak in, from the shared logs."""

from __future__ import annotations

import pytest

from thoughtbank.templates.leakage import LeakageGuard, gold_answer, mask_leaks

GEORGE = (
    "George is seen to place an even-money $100,000 bet on the Bulls to win the NBA Finals. "
    "What must he believe is the minimum probability that the Bulls will win?\n"
    "A. 0.525\nB. 0.800\nC. 0.450\nD. 0.575\nE. 0.750\nF. 0.350\nG. 0.650\nH. 0.300\nI. 0.700\n"
    "J. 0.400"
)
APPLES = (
    "Where do apples form on an apple tree?\n(A) south africa\n(B) sunshine\n(C) new york\n"
    "(D) bloom\n(E) palm"
)


def _found(text: str, query: str, ground_truth: str) -> list[tuple[str, str]]:
    return [(leak.kind, leak.text) for leak in LeakageGuard().find(text, query, ground_truth)]


@pytest.mark.parametrize(
    "text",
    [
        "Compare the utilities. \\boxed{A}",
        "So \\boxed{(A)}.",
        "Hence the answer is (A).",
        "answer: A",
        "Option A fits best.",
        "choice (A)",
        "The value matches (A).",
        "Correct answer - A",
    ],
)
def test_gold_letter_in_answer_stating_forms(text: str) -> None:
    assert [kind for kind, _ in _found(text, GEORGE, "A")] == ["ground truth"]


@pytest.mark.parametrize(
    "text",
    [
        "A bet is placed on a team.",
        "Ask what utility function applies.",
        "Option B is too high.",
        "the answer is a probability",
        "Rule (a) of the contract",
        "\\boxed{B}",
    ],
)
def test_the_letter_elsewhere_is_no_leak(text: str) -> None:
    assert _found(text, GEORGE, "A") == []


def test_gold_option_text_leaks_in_any_notation() -> None:
    assert _found("The minimum probability is 0.5250.", GEORGE, "A") == [("gold option", "0.5250")]
    assert _found("Pick 0.575 or 0.800.", GEORGE, "A") == []


def test_commonsense_qa_boxed_letter_and_option_text() -> None:
    text = "Reasoning steps:\n1. \\boxed{D} Bloom"
    assert _found(text, APPLES, "D") == [("ground truth", "\\boxed{D}"), ("gold option", "Bloom")]
    leaks = LeakageGuard().find(text, APPLES, "D")
    assert LeakageGuard().find(mask_leaks(text, leaks), APPLES, "D") == ()
    assert _found("Apples grow from BLOOMS in spring.", APPLES, "D") == []


def test_generic_or_stem_option_texts_leak_only_stated_as_answer() -> None:
    query = (
        "Which of these cause inflation?\n(A) None of the above\n(B) money growth\n(C) inflation"
    )
    assert _found("List what none of the above options share.", query, "A") == []
    assert _found("The answer is none of the above.", query, "A") == [
        ("gold option", "answer is none of the above")
    ]
    assert _found("Inflation rises when money grows.", query, "C") == []


@pytest.mark.parametrize(
    ("ground_truth", "text", "leaked"),
    [
        ("96", "It costs 96.0 dollars.", "96.0"),
        ("96", "It costs $96 in all.", "$96"),
        ("96", "So 96.00 remain.", "96.00"),
        ("1000", "That is 1,000 apples.", "1,000"),
        ("1,000", "That is 1000.", "1000"),
        ("25.0", "She needs 25 cups.", "25"),
        ("0.5", "The share is .5 of it.", ".5"),
        ("-3", "The root is -3.", "-3"),
        ("1414.0", "So 1414 girls.", "1414"),
        ("Half of it is $30,000*2 = 60,000\n#### 20,000", "Blake gave 20000 dollars.", "20000"),
        ("The sum is $\\boxed{494550}$.", "That gives 494,550.", "494,550"),
    ],
)
def test_gold_numbers_in_any_format(ground_truth: str, text: str, leaked: str) -> None:
    assert _found(text, "unrelated query words", ground_truth) == [("ground truth", leaked)]


@pytest.mark.parametrize(
    "text",
    [
        "It costs 960 dollars.",
        "9.6 of them",
        "196 days",
        "96.5 kg",
        "model gpt96x",
        "-96 degrees",
    ],
)
def test_other_numbers_are_no_leak(text: str) -> None:
    assert _found(text, "unrelated query words", "96") == []


def test_gold_answer_of_worked_solutions() -> None:
    assert gold_answer("Coop: 14\nFree Range: 28(2)-4=52 chickens\n#### 52") == "52"
    assert gold_answer("so it is $\\boxed{\\frac{241}{220}}$.") == "\\frac{241}{220}"
    assert gold_answer("x" * 200) == ""


def test_digits_of_a_named_symbol_are_no_number() -> None:
    guard = LeakageGuard()
    query = "Ann has 1 apple and buys 2 more. How many apples does she have?"
    assert not guard.find("Add [apple] to [value 3].", query, "3")
    assert guard.find("She has 3 apples.", query, "3")
