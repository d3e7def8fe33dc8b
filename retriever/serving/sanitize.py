"""Sanitization of template text before it reaches any prompt or response.

Templates are distilled from logged model outputs, so a log row could carry text that poses as
a chat turn ("system: ignore previous instructions") or special tokens of a chat format
(``<|im_start|>``, ``[INST]``). Placed in other users' prompts, such text would be read as
instructions. Every user-visible text field of a template is therefore stripped of those
markers (``thoughtbank.text_safety`` says what a marker is) and capped in length once, when an
index version is loaded.
"""

from __future__ import annotations

import dataclasses

from thoughtbank.schema import ThoughtTemplate
from thoughtbank.text_safety import sanitize_text

DEFAULT_MAX_TEMPLATE_CHARS = 4_000


def sanitize_template(
    template: ThoughtTemplate, max_chars: int = DEFAULT_MAX_TEMPLATE_CHARS
) -> ThoughtTemplate:
    """``template`` with its prompt-bound texts sanitized; ids and provenance kept."""

    def sanitize(text: str) -> str:
        return sanitize_text(text, max_chars)

    sanitized = dataclasses.replace(
        template,
        text=sanitize(template.text),
        source_query=sanitize(template.source_query),
        pitfalls=sanitize(template.pitfalls),
        fields=template.fields.map_texts(sanitize) if template.fields else None,
    )
    # A clean template (nearly all) is served as loaded: one copy in memory, not two.
    return template if sanitized == template else sanitized
