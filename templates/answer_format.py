"""The answer format of a task: how its answers must be stated, and the instruction that says so.

A template's answer format is the task's, decided from how the task is scored and what its data
looks like, never from one response's habit: MMLU-Pro answers are option letters even where a
model boxed its letter, GSM8K answers end with ``#### <number>`` even where a model wrote
"A: 26".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from enum import Enum

from thoughtbank.templates.query_parts import split_query


class AnswerFormat(str, Enum):
    CHOICE_LETTER = "choice_letter"
    HASH_NUMBER = "hash_number"
    BOXED = "boxed"
    CODE_BLOCK = "code_block"
    PLAIN = "plain"


_INSTRUCTIONS = {
    AnswerFormat.CHOICE_LETTER: (
        "End with 'The answer is (X)' where X is the letter of the chosen option."
    ),
    AnswerFormat.HASH_NUMBER: "End with '#### <number>' giving the final numeric answer.",
    AnswerFormat.BOXED: "Put the final answer in \\boxed{}.",
    AnswerFormat.CODE_BLOCK: "Return the complete Python function in a code block.",
    AnswerFormat.PLAIN: "State the final answer plainly on the last line.",
}

#: Metrics (lower case) that fix the format whatever the data looks like.
_METRIC_FORMATS = {
    "em_mc": AnswerFormat.CHOICE_LETTER,
    "mc": AnswerFormat.CHOICE_LETTER,
    "multiple_choice": AnswerFormat.CHOICE_LETTER,
    "gsm8k": AnswerFormat.HASH_NUMBER,
    "numeric_em": AnswerFormat.HASH_NUMBER,
    "svamp": AnswerFormat.HASH_NUMBER,
    "math": AnswerFormat.BOXED,
    "boxed_em": AnswerFormat.BOXED,
    "pass@1": AnswerFormat.CODE_BLOCK,
    "code_eval": AnswerFormat.CODE_BLOCK,
    "code": AnswerFormat.CODE_BLOCK,
}

#: What states each specific format, in a response or in an instruction. A letter alone in a
#: box (``\boxed{D}``) states a choice, not a boxed value.
_FORMAT_MARKERS = {
    AnswerFormat.CHOICE_LETTER: re.compile(
        r"\b(?i:answer)\s+is\s*:?\s*\(?[A-Z]\)?(?=[\s.,;:)\]'\"]|$)"
        r"|\\boxed\{\s*\(?[A-Z]\)?\s*\}"
        r"|\bletter\s+of\s+the\s+(?:chosen|correct|right)\s+(?:option|choice|answer)"
        r"|\b(?:option|choice)\s+letter\b"
    ),
    AnswerFormat.HASH_NUMBER: re.compile(r"####"),
    AnswerFormat.BOXED: re.compile(r"\\boxed\b|\bboxed\s+answer\b", re.IGNORECASE),
    AnswerFormat.CODE_BLOCK: re.compile(
        r"```|\bcode\s+block\b|\bpython\s+function\b|^\s*def\s+\w+\(", re.IGNORECASE | re.MULTILINE
    ),
}
#: Generic answer statements: a plain format where no specific one is stated.
_PLAIN_MARKER = re.compile(
    r"\banswer\s+is\b|\bfinal\s+answer\b|\banswer\s+plainly\b|^\s*(?:a|answer)\s*:\s*\S",
    re.IGNORECASE | re.MULTILINE,
)
_NUMBER = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?%?")
_HASH_ANSWER = re.compile(r"####\s*(\S+)\s*$")


def answer_format_instruction(kind: AnswerFormat) -> str:
    """The one instruction text of ``kind`` that templates carry."""
    return _INSTRUCTIONS[kind]


def classify_answer_format(text: str) -> AnswerFormat | None:
    """The answer format ``text`` (an instruction or a response) states, or None.

    Where a response states several (a box early, "The answer is (B)" last), the one stated
    last wins: that is where the response gives its answer.
    """
    last: tuple[int, AnswerFormat] | None = None
    for kind, marker in _FORMAT_MARKERS.items():
        for match in marker.finditer(text):
            is_boxed_letter = kind is AnswerFormat.BOXED and _FORMAT_MARKERS[
                AnswerFormat.CHOICE_LETTER
            ].match(text, match.start())
            if not is_boxed_letter and (last is None or match.start() >= last[0]):
                last = (match.start(), kind)
    if last is not None:
        return last[1]
    return AnswerFormat.PLAIN if _PLAIN_MARKER.search(text) else None


def is_numeric_answer(ground_truth: str) -> bool:
    """A number ("96", "$1,000", "25.0", "12%"), or a solution ending with ``#### <number>``."""
    answer = ground_truth.strip()
    hashed = _HASH_ANSWER.search(answer)
    return bool(_NUMBER.fullmatch(hashed.group(1) if hashed else answer))


def _majority(flags: Sequence[bool]) -> bool:
    return bool(flags) and 2 * sum(flags) > len(flags)


def task_answer_format(
    metric: str,
    queries: Sequence[str],
    correct_responses: Sequence[str],
    ground_truths: Sequence[str],
) -> AnswerFormat:
    """The answer format of a whole task.

    In order: an explicit metric; most queries having options (a choice letter); most ground
    truths being numbers (``#### <number>``); the format most correct responses state; plain.
    """
    by_metric = _METRIC_FORMATS.get(metric.strip().lower())
    if by_metric is not None:
        return by_metric
    if _majority([bool(split_query(query).options) for query in queries]):
        return AnswerFormat.CHOICE_LETTER
    if _majority([is_numeric_answer(gt) for gt in ground_truths if gt.strip()]):
        return AnswerFormat.HASH_NUMBER
    stated = Counter(
        kind for text in correct_responses if (kind := classify_answer_format(text)) is not None
    )
    if not stated:
        return AnswerFormat.PLAIN
    order = list(AnswerFormat)
    return max(stated, key=lambda kind: (stated[kind], -order.index(kind)))
