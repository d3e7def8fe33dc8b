"""Answer formats: instructions, classifying texts, and the format of a whole task."""

from __future__ import annotations

import pytest

from thoughtbank.templates.answer_format import (
    AnswerFormat,
    answer_format_instruction,
    classify_answer_format,
    is_numeric_answer,
    task_answer_format,
)

CSQA_QUERY = "Where do apples form on an apple tree?\n(A) south africa\n(B) sunshine\n(C) bloom"


@pytest.mark.parametrize("kind", list(AnswerFormat))
def test_every_instruction_classifies_as_its_own_kind(kind: AnswerFormat) -> None:
    assert classify_answer_format(answer_format_instruction(kind)) is kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Lets compute.\nThe answer is (A).", AnswerFormat.CHOICE_LETTER),
        ("the answer is J.", AnswerFormat.CHOICE_LETTER),
        (" \\boxed{D} Bloom", AnswerFormat.CHOICE_LETTER),
        ("\\boxed{(B)}", AnswerFormat.CHOICE_LETTER),
        ("16 - 3 - 4 = <<16-3-4=9>>9\n9 * 2 = 18\n#### 18", AnswerFormat.HASH_NUMBER),
        ("So the sum is $\\boxed{494550}$.", AnswerFormat.BOXED),
        ("First \\boxed{x} is tried, then the answer is (B).", AnswerFormat.CHOICE_LETTER),
        ("def min_cost(cost, m, n):\n    return 0", AnswerFormat.CODE_BLOCK),
        ("```python\nprint(1)\n```", AnswerFormat.CODE_BLOCK),
        ("She makes 13 * 2 = $26\nA: 26", AnswerFormat.PLAIN),
        ("The answer is 26 dollars.", AnswerFormat.PLAIN),
        ("Mexico is a country in North America.", None),
        ("", None),
    ],
)
def test_classify_what_a_text_states(text: str, kind: AnswerFormat | None) -> None:
    assert classify_answer_format(text) is kind


@pytest.mark.parametrize(
    ("answer", "numeric"),
    [
        ("96", True),
        ("96.00", True),
        ("$1,000", True),
        ("-3", True),
        ("12%", True),
        ("Half of it is $30,000*2 = <<30000*2=60000>>60,000\n#### 20,000", True),
        ("A", False),
        ("bayreuth germany", False),
        ("\\frac{3}{2}", False),
        ("", False),
    ],
)
def test_numeric_answers(answer: str, numeric: bool) -> None:
    assert is_numeric_answer(answer) is numeric


@pytest.mark.parametrize(
    ("metric", "kind"),
    [
        ("em_mc", AnswerFormat.CHOICE_LETTER),
        ("GSM8K", AnswerFormat.HASH_NUMBER),
        ("numeric_em", AnswerFormat.HASH_NUMBER),
        ("MATH", AnswerFormat.BOXED),
        ("boxed_em", AnswerFormat.BOXED),
        ("pass@1", AnswerFormat.CODE_BLOCK),
        ("code_eval", AnswerFormat.CODE_BLOCK),
    ],
)
def test_an_explicit_metric_decides_whatever_the_responses_do(
    metric: str, kind: AnswerFormat
) -> None:
    boxed = ["It is \\boxed{7}."] * 5
    assert task_answer_format(metric, ["What is 3 + 4?"], boxed, ["7"]) is kind


def test_without_an_explicit_metric_the_data_decides() -> None:
    boxed_letters = ["\\boxed{C} bloom"] * 3
    assert (
        task_answer_format("em", [CSQA_QUERY] * 3, boxed_letters, ["C"] * 3)
        is AnswerFormat.CHOICE_LETTER
    )
    boxed_numbers = ["Claire eats 7 dozen. \\boxed{7}"] * 3
    assert (
        task_answer_format("em", ["How many dozens?"] * 3, boxed_numbers, ["7", "1414.0"])
        is AnswerFormat.HASH_NUMBER
    )
    assert (
        task_answer_format(
            "", ["Sum it."] * 2, ["\\boxed{x+1}", "so \\boxed{2}", "A: 3"], ["x+1", "\\frac{1}{2}"]
        )
        is AnswerFormat.BOXED
    )
    assert (
        task_answer_format("f1_score", ["who sings it?"], [], ["Sammy Davis, Jr"])
        is AnswerFormat.PLAIN
    )
