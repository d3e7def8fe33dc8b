"""Sanitization of template text before it reaches any prompt or response.

Templates are distilled from logged model outputs, so a log row could carry text that poses as
a chat turn ("system: ignore previous instructions") or special tokens of a chat format
(``<|im_start|>``, ``[INST]``). Placed in other users' prompts, such text would be read as
instructions. Every user-visible text field of a template is therefore stripped of those
markers and capped in length once, when an index version is loaded.
"""

from __future__ import annotations

import dataclasses
import re

from thoughtbank.schema import TemplateFields, ThoughtTemplate

DEFAULT_MAX_TEMPLATE_CHARS = 4_000
TRUNCATION_MARK = " [...]"

# Special tokens of common chat formats: ChatML/Llama 3 (<|...|>), Llama 2 ([INST], <<SYS>>),
# sentence markers (<s>, </s>) and Gemma turns (<start_of_turn>, <end_of_turn>).
# A role name right after a turn-opening token ("<|im_start|>system") goes with it.
_ROLES = r"(?:system|assistant|user|human|ai|developer|tool)"
_SPECIAL_TOKENS = re.compile(
    rf"(?:<\|[^|>\n]{{0,40}}\|>|<start_of_turn>)(?:[ \t]*(?:{_ROLES}|model)\b)?"
    r"|\[/?INST\]|<</?SYS>>|</?s>|<end_of_turn>",
    re.IGNORECASE,
)
# A line that opens a chat turn: "system:", "### Assistant:", "<user>", "Human:" and the like.
_ROLE_PREFIX = re.compile(
    rf"^[ \t>#*]*(?:<\s*)?{_ROLES}\s*(?:>|:)[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
_BLANK_RUNS = re.compile(r"\n{3,}")


def sanitize_text(text: str, max_chars: int = DEFAULT_MAX_TEMPLATE_CHARS) -> str:
    """``text`` without special-token or chat-role markers, at most ``max_chars`` long.

    Role prefixes are removed but the rest of their line is kept: the content may be a
    legitimate reasoning step; what must go is the marker that would make it a new turn.
    """
    cleaned = _SPECIAL_TOKENS.sub("", text)
    cleaned = _ROLE_PREFIX.sub("", cleaned)
    cleaned = _BLANK_RUNS.sub("\n\n", cleaned).strip()
    if len(cleaned) > max_chars:
        cut = max(0, max_chars - len(TRUNCATION_MARK))
        cleaned = cleaned[:cut].rstrip() + TRUNCATION_MARK
    return cleaned


def _sanitize_fields(fields: TemplateFields, max_chars: int) -> TemplateFields:
    return TemplateFields(
        task_summary=sanitize_text(fields.task_summary, max_chars),
        reasoning_steps=tuple(sanitize_text(step, max_chars) for step in fields.reasoning_steps),
        answer_format=sanitize_text(fields.answer_format, max_chars),
    )


def sanitize_template(
    template: ThoughtTemplate, max_chars: int = DEFAULT_MAX_TEMPLATE_CHARS
) -> ThoughtTemplate:
    """A copy of ``template`` whose prompt-bound texts are sanitized; ids and provenance kept."""
    return dataclasses.replace(
        template,
        text=sanitize_text(template.text, max_chars),
        source_query=sanitize_text(template.source_query, max_chars),
        pitfalls=sanitize_text(template.pitfalls, max_chars),
        fields=_sanitize_fields(template.fields, max_chars) if template.fields else None,
    )
