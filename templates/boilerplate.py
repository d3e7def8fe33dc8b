"""Boilerplate: sentences a task's responses repeat whatever the query, learned from the data.

A response is cut into segments (lines, then sentences). A segment is masked (numbers, single
capital letters and mid-sentence names, the distillers' placeholders N and X included, become
"_"; lower case) so that "The answer is (C)." and "The answer is (A)." are one segment. A
masked segment that the responses to many different queries share is boilerplate: it says
nothing about how one query is solved. Only whole segments count, so method sentences that
merely share common words ("the total number of apples is ...") stay apart. Equations of
placeholders alone ("N + N = N") are left to the degenerate-step check.

Well-known prompt phrases are boilerplate in every task, learned or not.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_SEGMENT = re.compile(r"[^\n]+?(?:[.!?](?=\s)|$)", re.MULTILINE)
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
#: A capital letter alone, or a capitalized word after a lower-case word (a name); written so
#: that every match starts at a capital, which keeps masking fast on long responses.
_LETTER_OR_NAME = re.compile(r"[A-Z](?:(?<=[a-z,;] [A-Z])[a-z]+)?(?![A-Za-z])(?<![A-Za-z][A-Z])")
_WORD = re.compile(r"(?<![\\a-z])[a-z]{3,}")
_OPERATOR = re.compile(r"[=+*/<>^]")

#: Prompt phrases that are boilerplate in any task (case-insensitive).
KNOWN_PHRASES = (
    r"let'?s\s+think\s+(?:about\s+this\s+)?step\s+by\s+step\.?",
    r"let'?s\s+(?:solve|break\s+down|work\s+through|approach)\s+(?:this|the)\s+"
    r"(?:problem|question)\s+step\s+by\s+step\.?",
    r"we\s+refer\s+to\s+wikipedia(?:\s+articles\s+on\s+[\w ,&'-]{1,60}?)?\s+for\s+help\.?",
    r"the\s+(?:correct\s+)?answer\s+is\s*:?\s*\(?[A-J]\)?(?![\w'])\.?",
    r"this\s+question\s+refers\s+to\s+the\s+following\s+information\.?",
)
_KNOWN = re.compile("|".join(f"(?:{phrase})" for phrase in KNOWN_PHRASES), re.IGNORECASE)

#: A segment is boilerplate when the responses to at least this many queries, and this share of
#: the task's sampled queries, contain it. On the shared logs the most shared method sentence
#: (GSM8K's "combining like terms, we get:") reaches 3% of queries; prompt phrases such as
#: "We refer to Wikipedia articles on management for help." reach 7% and more.
MIN_QUERIES = 5
MIN_QUERY_SHARE = 0.05


def mask_segment(segment: str) -> str:
    """The form in which segments are compared: placeholders for what varies, folded space."""
    masked = _LETTER_OR_NAME.sub("_", _NUMBER.sub("_", segment))
    return " ".join(masked.lower().split())


def _segments(text: str) -> Iterable[re.Match[str]]:
    return _SEGMENT.finditer(text)


def _countable(masked: str) -> bool:
    """A segment worth counting: has letters, digits or placeholders, and is no bare equation."""
    if not any(ch.isalnum() or ch == "_" for ch in masked):
        return False
    return bool(_WORD.search(masked)) or not _OPERATOR.search(masked)


@dataclass(frozen=True, slots=True)
class Boilerplate:
    """The boilerplate of one task: masked segments (see ``mask_segment``) plus known phrases."""

    segments: frozenset[str] = frozenset()

    def _spans(self, text: str) -> list[tuple[int, int]]:
        spans = [
            (m.start(), m.end())
            for m in _segments(text)
            if mask_segment(m.group(0)) in self.segments
        ]
        spans += [(m.start(), m.end()) for m in _KNOWN.finditer(text)]
        merged: list[tuple[int, int]] = []
        for start, end in sorted(spans):  # a known phrase inside a learned segment is one find
            if merged and start < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def find(self, text: str) -> list[str]:
        """Every boilerplate segment or phrase in ``text``, in order, stripped."""
        return [text[start:end].strip() for start, end in self._spans(text)]

    def strip(self, text: str) -> str:
        """``text`` without its boilerplate; spaces folded, empty lines dropped."""
        kept, position = [], 0
        for start, end in self._spans(text):
            kept.append(text[position:start])
            position = end
        kept.append(text[position:])
        lines = (" ".join(line.split()) for line in "".join(kept).splitlines())
        return "\n".join(line for line in lines if line)


def learn_boilerplate(responses_by_query: Iterable[Sequence[str]]) -> Boilerplate:
    """The boilerplate of one task from its responses, grouped by query (one sequence each)."""
    shared: Counter[str] = Counter()
    queries = 0
    for responses in responses_by_query:
        queries += 1
        shared.update(
            {
                masked
                for response in responses
                for m in _segments(response)
                if _countable(masked := mask_segment(m.group(0)))
            }
        )
    needed = max(MIN_QUERIES, MIN_QUERY_SHARE * queries)
    return Boilerplate(frozenset(segment for segment, count in shared.items() if count >= needed))
