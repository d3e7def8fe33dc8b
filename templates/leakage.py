"""Leakage guard: a template must teach how to solve a kind of query, not hand over one answer.

Two leaks are detected: the query's ground-truth answer (matched as an answer, so the letter "A"
of a multiple-choice answer is not found in every word) and long verbatim spans copied from the
source query. Each ``Leak`` carries a regular expression of what leaked so that a distiller asked
again can avoid or mask exactly that text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

_WORD = re.compile(r"\w+")
_CHOICE_LETTER = re.compile(r"[A-J]")
_NUMBER = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?%?")
DEFAULT_MAX_QUERY_SPAN_WORDS = 12


@dataclass(frozen=True, slots=True)
class Leak:
    """One leak: ``kind`` is "ground truth" or "query span"; ``text`` is what was found."""

    kind: str
    text: str
    pattern: str

    def describe(self) -> str:
        return f"{self.kind}: {self.text!r}"


def ground_truth_pattern(ground_truth: str) -> str | None:
    """A regex that finds ``ground_truth`` stated as an answer, or None for no ground truth."""
    answer = ground_truth.strip()
    if not answer:
        return None
    if _CHOICE_LETTER.fullmatch(answer):
        return rf"\banswer\s*(?:is|:)\s*\(?{answer}\b\)?|\(\s*{answer}\s*\)|\boption\s+{answer}\b"
    if _NUMBER.fullmatch(answer):
        digits = re.escape(answer.lstrip("+$").rstrip("%").replace(",", ""))
        return rf"(?<![\w.]){digits}(?!\w|\.\d)"
    return rf"(?<!\w){re.escape(answer)}(?!\w)"


def _span_pattern(words: list[str]) -> str:
    return r"\b" + r"\W+".join(map(re.escape, words)) + r"\b"


@dataclass(frozen=True, slots=True)
class LeakageGuard:
    """Finds leaks in a template's text; ``max_query_span_words`` is the longest allowed copy."""

    max_query_span_words: int = DEFAULT_MAX_QUERY_SPAN_WORDS

    def find(self, text: str, query: str, ground_truth: str) -> tuple[Leak, ...]:
        return (*self._answer_leaks(text, ground_truth), *self._query_spans(text, query))

    @staticmethod
    def _answer_leaks(text: str, ground_truth: str) -> list[Leak]:
        pattern = ground_truth_pattern(ground_truth)
        found = re.search(pattern, text, re.IGNORECASE) if pattern else None
        return [Leak("ground truth", found.group(0), pattern)] if found and pattern else []

    def _query_spans(self, text: str, query: str) -> list[Leak]:
        """Word runs longer than ``max_query_span_words`` shared with the query.

        Lines are compared one by one: matching blocks never cross, so a span copied into two
        lines of the text would otherwise be found only once.
        """
        matcher = SequenceMatcher(None, autojunk=False)
        matcher.set_seq2([w.lower() for w in _WORD.findall(query)])  # indexed once, reused
        spans: dict[str, Leak] = {}
        for line in text.splitlines():
            line_words = [w.lower() for w in _WORD.findall(line)]
            if len(line_words) <= self.max_query_span_words:
                continue
            matcher.set_seq1(line_words)
            for block in matcher.get_matching_blocks():
                if block.size > self.max_query_span_words:
                    words = line_words[block.a : block.a + block.size]
                    spans.setdefault(" ".join(words), Leak("query span", " ".join(words),
                                                           _span_pattern(words)))
        return list(spans.values())


def mask_leaks(text: str, leaks: tuple[Leak, ...]) -> str:
    """``text`` with every leaked span replaced by "...", longest first: a short leak inside a
    long one (the answer letter inside a copied option) must not break the long one's match."""
    for leak in sorted(leaks, key=lambda leak: len(leak.text), reverse=True):
        text = re.sub(leak.pattern, "...", text, flags=re.IGNORECASE)
    return text
