"""Distillers turn a query and its best responses into an abstract ``TemplateFields``.

``ExtractiveDistiller`` needs no LLM: it abstracts the query's numbers and names, keeps the step
structure of the best response and detects its answer format. It is deterministic, which makes
mining reproducible and lets the demo and tests run anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from thoughtbank.templates.schema import LogRecord, TemplateFields

_NUMBER = re.compile(r"(?<![\w.])[-+]?\$?\d+(?:,\d{3})*(?:\.\d+)?%?")
_CAPITALIZED_WORD = re.compile(r"\b[A-Z][a-z]+\b")
_MID_SENTENCE_CAPITALIZED = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
_STEP_MARKER = re.compile(r"^\s*(?:step\s*\d+[:.)]|\d+[.)]|[-*•])\s*", re.IGNORECASE)
_OPTIONS_BLOCK = re.compile(r"\n\s*(?:options?|choices?)\s*:.*", re.IGNORECASE | re.DOTALL)
MAX_STEPS = 3
MAX_STEP_CHARS = 160
MAX_SUMMARY_CHARS = 200


class Distiller(Protocol):
    """Turns one query and its selected responses into template fields."""

    name: str
    version: str

    def distill(self, task: str, query: str, responses: Sequence[LogRecord]) -> TemplateFields:
        ...


def query_names(query: str) -> frozenset[str]:
    """Proper names of a query: capitalized words seen mid-sentence or more than once."""
    words = _CAPITALIZED_WORD.findall(query)
    repeated = {w for w in words if words.count(w) > 1}
    return frozenset(repeated | set(_MID_SENTENCE_CAPITALIZED.findall(query)))


def abstract_text(text: str, names: frozenset[str] = frozenset()) -> str:
    """Replace numbers and the query's proper names by placeholders (N, X)."""
    text = _NUMBER.sub("N", text)
    if names:
        text = re.sub(r"\b(?:" + "|".join(map(re.escape, sorted(names))) + r")\b", "X", text)
    return text


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _candidate_steps(response: str) -> list[str]:
    """Reasoning units of a response: its lines when it has several, else its sentences."""
    lines = [line.strip() for line in response.splitlines() if line.strip()]
    if len(lines) < 2:
        lines = [s.strip() for s in _SENTENCE_END.split(response) if s.strip()]
    steps = []
    for line in lines:
        if line.startswith(("```", "####")) or "answer is" in line.lower():
            continue
        step = _STEP_MARKER.sub("", line)
        if len(step) > 12:
            steps.append(step)
    return steps


def _pick_steps(steps: list[str], names: frozenset[str]) -> tuple[str, ...]:
    """Up to MAX_STEPS steps spread over the response: first, middle, last."""
    if len(steps) <= MAX_STEPS:
        chosen = steps
    else:
        chosen = [steps[0], steps[len(steps) // 2], steps[-1]]
    return tuple(_clip(abstract_text(step, names), MAX_STEP_CHARS) for step in chosen)


def detect_answer_format(response: str) -> str:
    """How the response states its final answer, as an instruction."""
    lowered = response.lower()
    if re.search(r"answer is \(?[a-j]\)?", lowered):
        return "End with 'The answer is (X)' where X is the letter of the chosen option."
    if "\\boxed" in response:
        return "Put the final answer in \\boxed{}."
    if re.search(r"^####\s*", response, re.MULTILINE):
        return "End with '#### <number>' giving the final numeric answer."
    if "```" in response or re.search(r"^\s*def \w+\(", response, re.MULTILINE):
        return "Return the complete Python function in a code block."
    if "answer is" in lowered:
        return "End with 'The answer is <answer>'."
    return "State the final answer plainly on the last line."


def _summary(task: str, query: str, names: frozenset[str]) -> str:
    question = _OPTIONS_BLOCK.sub("", query).strip()
    ask = _SENTENCE_END.split(question)[-1] if question else ""
    kind = task.split("/")[-1].replace("_", " ")
    return _clip(f"Solve a {kind} problem: {abstract_text(ask, names)}", MAX_SUMMARY_CHARS)


class ExtractiveDistiller:
    """Deterministic, LLM-free distiller (the default)."""

    name = "extractive"
    version = "1"

    def distill(self, task: str, query: str, responses: Sequence[LogRecord]) -> TemplateFields:
        if not responses:
            raise ValueError("no responses to distil")
        best = responses[0].response
        names = query_names(query)
        steps = _pick_steps(_candidate_steps(best), names)
        if not steps:
            steps = ("Identify what is asked and the given facts, then derive the answer.",)
        return TemplateFields(
            task_summary=_summary(task, query, names),
            reasoning_steps=steps,
            answer_format=detect_answer_format(best),
        )
