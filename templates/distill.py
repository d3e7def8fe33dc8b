"""Distillers turn a query and its best responses into an abstract ``TemplateFields``.

A distiller takes a ``DistillRequest`` (the query, its selected responses, the task's profile,
optionally failed responses to learn pitfalls from, and leaks to avoid when asked again) and
returns a ``Distillation``. ``ExtractiveDistiller`` needs no LLM: it fuses the steps the
responses agree on (``fusion``), names the query's quantities and masks its people
(``abstraction``), summarizes the question stem without its options and states the task's answer
format. It is deterministic, which makes mining reproducible and lets the demo and tests run
anywhere. The LLM distiller is in ``chat.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Protocol

from thoughtbank.templates.abstraction import QueryAbstraction
from thoughtbank.templates.answer_format import (
    AnswerFormat,
    answer_format_instruction,
    classify_answer_format,
)
from thoughtbank.templates.fusion import (
    MAX_STEPS,
    StepContext,
    code_steps,
    fuse_steps,
    response_steps,
)
from thoughtbank.templates.leakage import Leak, mask_leaks
from thoughtbank.templates.query_parts import split_query
from thoughtbank.templates.schema import LogRecord, TemplateFields
from thoughtbank.templates.task_profile import TaskProfile

MAX_SUMMARY_CHARS = 200
MAX_PITFALL_CHARS = 360
#: Words of the question kept in the summary: below the leakage guard's default span.
MAX_QUESTION_WORDS = 11
MIN_QUESTION_CONTENT_WORDS = 3
#: Fewest query quantities, used by the steps, worth a step that names them.
MIN_GIVENS = 2
#: An option sentence this long is specific enough that a step repeating it gives the option away.
MIN_OPTION_SENTENCE_WORDS = 4
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")
_GENERIC_ASK = re.compile(
    r"\b(?:which|what) of the following\b[^?]*\??|\b(?:best|most) "
    r"(?:describes|accurate|likely)\b",
    re.IGNORECASE,
)
_QUESTION_WORD = re.compile(
    r"\b(?:how|what|which|who|whom|whose|where|when|why|find|"
    r"calculate|determine|compute|evaluate|simplify|solve)\b",
    re.IGNORECASE,
)
_CODE_LINE = re.compile(r"^(?:def |class |import |from \w+ import|>>>|@|return\b|#)")
#: Method of a task whose responses carry no reasoning, by answer format.
FORMAT_ONLY_STEPS: dict[AnswerFormat, tuple[str, ...]] = {
    AnswerFormat.CHOICE_LETTER: (
        "Read every option against what the question asks.",
        "Rule out the options that contradict it and choose the one that fits best.",
    ),
    AnswerFormat.CODE_BLOCK: (
        "Define the function the task names, with its arguments.",
        "Return the result and check it against the examples the task gives.",
    ),
}
GENERIC_STEPS = (
    "Identify the given facts and what is asked, then derive the answer from them step by step.",
)


@dataclass(frozen=True, slots=True)
class DistillRequest:
    """What a distiller sees of one group.

    ``profile`` is what the mining job learnt about the whole task (its answer format and
    boilerplate); ``failed`` is non-empty only when a pitfalls note is wanted; ``avoid`` lists
    the leaks of a previous attempt when the distiller is asked again.
    """

    task: str
    query: str
    responses: tuple[LogRecord, ...]
    failed: tuple[LogRecord, ...] = ()
    avoid: tuple[Leak, ...] = ()
    profile: TaskProfile | None = None


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

    def distill(self, request: DistillRequest) -> Distillation: ...

    def usage(self) -> LLMUsage:
        """Totals over this distiller's lifetime (every attempt, failed ones included)."""
        ...


def _question(stem: str) -> str:
    """The sentence of the stem that asks, without generic multiple-choice wording; the first
    sentence when the asking one says nothing specific ("Which of the following is true?")."""
    sentences = [s.strip() for s in _SENTENCE_END.split(" ".join(stem.split())) if s.strip()]
    if not sentences:
        return ""
    asking = [s for s in sentences if s.endswith("?") or _QUESTION_WORD.search(s)]
    for sentence in reversed(asking or sentences[-1:]):
        specific = _GENERIC_ASK.sub("", sentence).strip(" ,;:?")
        if len(re.findall(r"[A-Za-z]{3,}", specific)) >= MIN_QUESTION_CONTENT_WORDS:
            return specific
    return _GENERIC_ASK.sub("", sentences[0]).strip(" ,;:?")


def _prose(stem: str) -> str:
    """A code task's description: its text without code lines and docstring quotes."""
    lines = [line.strip().strip('"').strip("'").strip() for line in stem.splitlines()]
    return " ".join(line for line in lines if line and not _CODE_LINE.match(line))


def _summary(task: str, stem: str, abstraction: QueryAbstraction, is_code: bool) -> str:
    question = _SENTENCE_END.split(_prose(stem))[0] if is_code else _question(stem)
    words = abstraction.apply(question).split()
    ask = " ".join(words[:MAX_QUESTION_WORDS]) + (" ..." if len(words) > MAX_QUESTION_WORDS else "")
    kind = task.split("/")[-1].replace("_", " ")
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return _clip(
        f"Solve {article} {kind} problem: {ask}" if ask else f"Solve {article} {kind} problem.",
        MAX_SUMMARY_CHARS,
    )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 4].rsplit(" ", 1)[0] + " ..."


def _answer_format(request: DistillRequest) -> AnswerFormat:
    """The task's format; without a profile, the one the best response states."""
    if request.profile is not None:
        return request.profile.answer_format
    return classify_answer_format(request.responses[0].response) or AnswerFormat.PLAIN


def _givens(steps: tuple[str, ...], abstraction: QueryAbstraction) -> tuple[str, ...]:
    """A step naming the query's quantities the steps use, when their names say something."""
    used = [
        f"[{name}]"
        for name in abstraction.quantity_names
        if any(f"[{name}]" in step for step in steps) and re.search(r"[a-z]{3,}", name)
    ]
    if len(used) < MIN_GIVENS:
        return ()
    return (f"Name the quantities the question gives: {', '.join(used)}.",)


def _steps(
    request: DistillRequest,
    context: StepContext,
    answer_format: AnswerFormat,
    abstraction: QueryAbstraction,
) -> tuple[str, ...]:
    """Fused steps; a code task's from its code; without reasoning, the format's method."""
    if answer_format is AnswerFormat.CODE_BLOCK:
        steps = next(
            (code_steps(r.response) for r in request.responses if code_steps(r.response)), ()
        )
    else:
        fused = fuse_steps([response_steps(r.response, context) for r in request.responses])
        steps = _givens(fused, abstraction) + fused if fused else ()
        if steps and answer_format is AnswerFormat.CHOICE_LETTER:
            steps = (*steps[:MAX_STEPS], "Choose the option that matches this reasoning.")
    return steps or FORMAT_ONLY_STEPS.get(answer_format, GENERIC_STEPS)


def _pitfalls(failed: tuple[LogRecord, ...], kept: tuple[str, ...], context: StepContext) -> str:
    """How a failed response went wrong: its first step that no kept step agrees with."""
    if not failed:
        return ""
    kept_steps = set(kept)
    for record in failed:
        wrong = [s for s in response_steps(record.response, context) if s not in kept_steps]
        if wrong:
            note = (
                f"{len(failed)} logged response(s) to this query failed; one reasoned "
                f"'{wrong[0]}' Check each step against the question before answering."
            )
            return _clip(note, MAX_PITFALL_CHARS)
    return ""


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
    version = "4"

    def distill(self, request: DistillRequest) -> Distillation:
        if not request.responses:
            raise ValueError("no responses to distil")
        parts = split_query(request.query)
        texts = [r.response for r in (*request.responses, *request.failed)]
        abstraction = QueryAbstraction(parts.stem, texts)
        context = StepContext(
            abstraction=abstraction,
            query=request.query,
            option_texts=_option_texts(parts.options),
            option_letters=frozenset(parts.options),
            strip_boilerplate=(request.profile.boilerplate.strip if request.profile else str.strip),
        )
        answer_format = _answer_format(request)
        steps = _steps(request, context, answer_format, abstraction)
        fields = TemplateFields(
            task_summary=_summary(
                request.task,
                context.strip_boilerplate(parts.stem),
                abstraction,
                answer_format is AnswerFormat.CODE_BLOCK,
            ),
            reasoning_steps=steps,
            answer_format=answer_format_instruction(answer_format),
        )
        pitfalls = _pitfalls(request.failed, steps, context)
        return Distillation(_masked(fields, request.avoid), mask_leaks(pitfalls, request.avoid))

    def usage(self) -> LLMUsage:
        return LLMUsage()


def _option_texts(options: dict[str, str]) -> tuple[str, ...]:
    """Option texts worth looking for in a step: each option whole, and each sentence of a
    longer one (a step may restate the gold option one sentence at a time); a lone number or
    letter is found everywhere, so those are left out."""
    texts = [" ".join(text.lower().split()) for text in options.values()]
    sentences = [
        s.strip(" .")
        for t in texts
        for s in re.split(r"(?<=[.;!?])\s+", t)
        if s != t and len(re.findall(r"[a-z]{3,}", s)) >= MIN_OPTION_SENTENCE_WORDS
    ]
    return tuple(t for t in (*texts, *sentences) if re.search(r"[a-z]{3,}", t))
