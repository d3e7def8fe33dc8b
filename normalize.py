"""The query normalization rule: one query logged with different prompt boilerplate is one query.

Mining groups responses by it, the index builder matches templates to their queries by it and
the server excludes a query's own templates by it; it imports only the standard library.
"""

from __future__ import annotations

import re

#: Boilerplate that prompts append to queries; stripped (repeatedly) from the end.
PROMPT_SUFFIXES = (
    "let's think step by step",
    "lets think step by step",
    "think step by step",
    "let's solve this step by step",
    "lets solve this step by step",
    "answer:",
    "answer",
    "a:",
)
# An end-anchored search tries every start position of a long query; matching the reversed
# suffixes at the start of the reversed query reads only the suffix itself.
_REVERSED_SUFFIXES = re.compile(
    r"(?:\s*[.:]?\s*(?:" + "|".join(re.escape(s[::-1]) for s in PROMPT_SUFFIXES) + r")\s*)+",
    re.IGNORECASE,
)


def normalize_query(query: str) -> str:
    """Drop prompt boilerplate appended to queries ("Let's think step by step") and fold space."""
    text = query.strip()
    suffix = _REVERSED_SUFFIXES.match(text[::-1])
    if suffix:
        text = text[: len(text) - suffix.end()]
    return " ".join(text.split())
