"""Scoring an LLM answer against a ground truth with the query's metric.

Supported metrics (the FusionBench names): ``em_mc`` (multiple-choice letter), ``GSM8K``
(numeric exact match; the gold answer follows ``####`` when a full solution is given),
``MATH`` (the last ``\\boxed{}`` answer, compared after light normalization) and ``f1_score``
(token F1, for open-domain QA). Other metrics (code execution, concept coverage) need
machinery an evaluation run should not have, so ``scorer_for`` returns ``None`` for them and
the caller skips those queries, counting them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

Scorer = Callable[[str, str], float]

_CHOICE_PATTERNS = (
    re.compile(r"answer is:?\s*\(?([A-J])\)?\b", re.IGNORECASE),
    re.compile(r"\\boxed\{\s*\(?([A-J])\)?\s*\}"),
    re.compile(r"\(([A-J])\)"),
    re.compile(r"\b([A-J])\b"),
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_WORD = re.compile(r"\w+")


def last_boxed(text: str) -> str:
    """Content of the last ``\\boxed{...}`` in ``text`` (braces balanced), or ""."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return ""
    depth, position = 0, start + len("\\boxed{")
    for index in range(position, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            if depth == 0:
                return text[position:index].strip()
            depth -= 1
    return ""


def choice_letter(text: str) -> str:
    """The multiple-choice letter an answer settles on: explicit forms first, else the last."""
    for pattern in _CHOICE_PATTERNS:
        found = pattern.findall(text)
        if found:
            return str(found[-1]).upper()
    return ""


def _number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def numeric_match(answer: str, truth: str) -> float:
    gold = _number(truth.split("####")[-1])
    predicted = _number(last_boxed(answer) or answer)
    return float(gold is not None and predicted is not None and abs(gold - predicted) < 1e-6)


def _normalized_math(text: str) -> str:
    for noise in ("\\left", "\\right", "\\!", "$", " ", "\\,", "dfrac", "tfrac"):
        text = text.replace(noise, "frac" if noise in ("dfrac", "tfrac") else "")
    return text.rstrip(".")


def boxed_match(answer: str, truth: str) -> float:
    gold = last_boxed(truth) or truth
    predicted = last_boxed(answer)
    return float(bool(predicted) and _normalized_math(predicted) == _normalized_math(gold))


def choice_match(answer: str, truth: str) -> float:
    return float(choice_letter(answer) == truth.strip().upper()[:1])


def _final_line(answer: str) -> str:
    lines = answer.strip().splitlines()
    return lines[-1] if lines else ""


def token_f1(answer: str, truth: str) -> float:
    """Token F1 of the boxed answer (else the last line) against the truth."""
    predicted = _WORD.findall((last_boxed(answer) or _final_line(answer)).lower())
    gold = _WORD.findall(truth.lower())
    common = sum((Counter(predicted) & Counter(gold)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


SCORERS: dict[str, Scorer] = {
    "em_mc": choice_match,
    "GSM8K": numeric_match,
    "MATH": boxed_match,
    "f1_score": token_f1,
}


def scorer_for(metric: str) -> Scorer | None:
    return SCORERS.get(metric)
