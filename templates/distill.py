"""Distillers turn a query and its best responses into an abstract ``TemplateFields``.

A distiller takes a ``DistillRequest`` (the query, its selected responses, optionally failed
responses to learn pitfalls from, and leaks to avoid when asked again) and returns a
``Distillation``. ``ExtractiveDistiller`` needs no LLM: it abstracts the query's numbers and
names, keeps the step structure of the best response and detects its answer format. It is
deterministic, which makes mining reproducible and lets the demo and tests run anywhere. The
LLM distiller is in ``chat.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Protocol

from thoughtbank.templates.leakage import Leak, mask_leaks
from thoughtbank.templates.schema import LogRecord, TemplateFields

_NUMBER = re.compile(r"(?<![\w.])[-+]?\$?\d+(?:,\d{3})*(?:\.\d+)?%?")
_CAPITALIZED_WORD = re.compile(r"\b[A-Z][a-z]+\b")
_MID_SENTENCE_CAPITALIZED = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]+\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
_STEP_MARKER = re.compile(r"^\s*(?:step\s*\d+[:.)]|\d+[.)]|[-*•])\s*", re.IGNORECASE)
_OPTIONS_BLOCK = re.compile(r"\s*\b(?:options?|choices?)\s*:.*", re.IGNORECASE | re.DOTALL)
MAX_STEPS = 3
MAX_STEP_CHARS = 160
MAX_SUMMARY_CHARS = 200
#: Words of the query's question kept in the summary: below the leakage guard's default span.
MAX_QUESTION_WORDS = 10


@dataclass(frozen=True, slots=True)
class DistillRequest:
    """What a distiller sees of one group.

    ``failed`` is non-empty only when a pitfalls note is wanted; ``avoid`` lists the leaks of a
    previous attempt when the distiller is asked again.
    """

    task: str
    query: str
    responses: tuple[LogRecord, ...]
    failed: tuple[LogRecord, ...] = ()
    avoid: tuple[Leak, ...] = ()


@dataclass(frozen=True, slots=True)
class Distillation:
    """A distiller's answer: the template's fields and, when asked for, a pitfalls note."""

    fields: TemplateFields
    pitfalls: str = ""


@dataclass(frozen=True, slots=True)
class LLMUsage:
    """LLM calls made so far; token counts are None where the model does not report them."""

    calls: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None


class Distiller(Protocol):
    """Turns one query and its selected responses into template fields; thread-safe."""

    name: str
    version: str

    def distill(self, request: DistillRequest) -> Distillation:
        ...

    def usage(self) -> LLMUsage:
        """Totals over this distiller's lifetime (every attempt, failed ones included)."""
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


def _last_line(response: str) -> str:
    lines = [line.strip() for line in response.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _pitfalls(failed: tuple[LogRecord, ...], names: frozenset[str]) -> str:
    """A short "avoid" note: how a failed response reasoned and where it ended."""
    if not failed:
        return ""
    example = failed[0].response
    first_step = next(iter(_candidate_steps(example)), "")
    ending = abstract_text(_last_line(example), names)
    note = (f"{len(failed)} logged response(s) to this query failed, e.g. one reasoning "
            f"'{abstract_text(first_step, names)}' and ending '{ending}'. "
            "Check each step against the question before answering.")
    return _clip(note, MAX_SUMMARY_CHARS + MAX_STEP_CHARS)


def _summary(task: str, query: str, names: frozenset[str]) -> str:
    question = _OPTIONS_BLOCK.sub("", query).strip()
    ask = _SENTENCE_END.split(question)[-1] if question else ""
    words = ask.split()
    if len(words) > MAX_QUESTION_WORDS:
        ask = " ".join(words[:MAX_QUESTION_WORDS]) + " ..."
    kind = task.split("/")[-1].replace("_", " ")
    return _clip(f"Solve a {kind} problem: {abstract_text(ask, names)}", MAX_SUMMARY_CHARS)


def _masked(fields: TemplateFields, leaks: tuple[Leak, ...]) -> TemplateFields:
    return replace(
        fields,
        task_summary=mask_leaks(fields.task_summary, leaks),
        reasoning_steps=tuple(mask_leaks(step, leaks) for step in fields.reasoning_steps),
        answer_format=mask_leaks(fields.answer_format, leaks),
    )


class ExtractiveDistiller:
    """Deterministic, LLM-free distiller (the default). Asked again, it masks the leaks."""

    name = "extractive"
    version = "2"

    def distill(self, request: DistillRequest) -> Distillation:
        if not request.responses:
            raise ValueError("no responses to distil")
        best = request.responses[0].response
        names = query_names(request.query)
        steps = _pick_steps(_candidate_steps(best), names)
        if not steps:
            steps = ("Identify what is asked and the given facts, then derive the answer.",)
        fields = TemplateFields(
            task_summary=_summary(request.task, request.query, names),
            reasoning_steps=steps,
            answer_format=detect_answer_format(best),
        )
        pitfalls = _pitfalls(request.failed, names)
        return Distillation(_masked(fields, request.avoid), mask_leaks(pitfalls, request.avoid))

    def usage(self) -> LLMUsage:
        return LLMUsage()
