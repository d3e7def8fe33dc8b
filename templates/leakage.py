"""Leakage guard: a template must teach how to solve a kind of query, not hand over one answer.

Three leaks are detected. The gold answer as an answer: a choice letter only in the forms that
state an answer (``\\boxed{D}``, "answer is (D)", "answer: D", "option D", a lone "(D)"), so the
letter "A" is not found in every word; a number in any notation (96, 96.00, $96, 1,000 for
1000, 25 for 25.0); other answers as a phrase. The gold option's text, found with
``split_query``, as a phrase (case and spacing aside), unless it is too generic to single out
an answer or the question stem itself says it. And long verbatim spans copied from the query.
Each ``Leak`` carries a regular expression of what leaked (matched case-insensitively, as
``mask_leaks`` does), so that a distiller asked again can avoid or mask exactly that text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from difflib import SequenceMatcher

from thoughtbank.templates.query_parts import split_query

_WORD = re.compile(r"\w+")
#: A symbol the abstraction named ("[eggs per day]", "[value 2]"): its digits count nothing.
_SYMBOL = re.compile(r"\[[A-Za-z][\w' -]+\]")
_CHOICE_LETTER = re.compile(r"\(?([A-Z])\)?")
_NUMBER = re.compile(r"[-+]?\$?\s?\d[\d,]*(?:\.\d+)?%?|[-+]?\$?\.\d+%?")
_HASH_ANSWER = re.compile(r"####\s*(\S+)\s*$")
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_CONTENT_WORD = re.compile(r"[A-Za-z]{3,}")
DEFAULT_MAX_QUERY_SPAN_WORDS = 12
#: A ground truth longer than this is a worked solution, not an answer to look for.
MAX_ANSWER_CHARS = 100
#: Words that cannot single out an answer: an option made of them only ("None of the above",
#: "Both") is a leak only where it is stated as the answer.
STOP_WORDS = frozenset(
    """
a an the and or but nor of in on at to for from by with without as is are was were be been
being it its this that these those there here which who whom what when where why how all any
both each either neither none no not only than then too very can will just also other others
above below same such some more most less least few many much own so if else do does did has
have had true false yes
""".split()
)


def content_words(text: str) -> list[str]:
    """The words of ``text`` (three letters or more) that are no stop words, lower-cased."""
    words = (word.lower() for word in _CONTENT_WORD.findall(text))
    return [word for word in words if word not in STOP_WORDS]


@dataclass(frozen=True, slots=True)
class Leak:
    """One leak: ``kind`` is "ground truth", "gold option" or "query span"; ``text`` is what was
    found; ``pattern`` finds it (case-insensitively)."""

    kind: str
    text: str
    pattern: str

    def describe(self) -> str:
        return f"{self.kind}: {self.text!r}"


def gold_answer(ground_truth: str) -> str:
    """The answer in a ground truth: the number after "####" or the last ``\\boxed{}`` of a
    worked solution, else the text itself ("" when it is a long solution)."""
    text = ground_truth.strip()
    hashed = _HASH_ANSWER.search(text)
    if hashed:
        return hashed.group(1)
    boxed = _BOXED.findall(text)
    if boxed:
        return str(boxed[-1]).strip()
    return text if len(text) <= MAX_ANSWER_CHARS else ""


def _letter_pattern(letter: str) -> str:
    exact = rf"(?-i:{letter})"
    return "|".join(
        (
            rf"\\boxed\{{\s*\(?\s*{exact}\s*\)?\s*\}}",
            rf"\banswer\s*(?:is\b)?\s*[:=-]?\s*\(?{exact}\)?(?![\w'])",
            rf"\b(?:option|choice)\s*\(?{exact}\)?(?![\w'])",
            rf"\(\s*{exact}\s*\)",
        )
    )


def _digits_with_optional_commas(digits: str) -> str:
    groups: list[str] = []
    while len(digits) > 3:
        digits, tail = digits[:-3], digits[-3:]
        groups.insert(0, tail)
    return ",?".join([digits, *groups])


def number_pattern(answer: str) -> str | None:
    """A regex finding the number ``answer`` in any usual notation, or None if it is none."""
    if not _NUMBER.fullmatch(answer.strip()):
        return None
    try:
        value = Decimal(re.sub(r"[\s$,%+]", "", answer))
    except InvalidOperation:
        return None
    sign = "-" if value < 0 else ""
    whole, _, fraction = f"{abs(value):f}".partition(".")
    fraction = fraction.rstrip("0")
    integer = _digits_with_optional_commas(whole)
    if fraction:
        body = (rf"(?:{integer})?" if whole == "0" else integer) + rf"\.{fraction}0*"
    else:
        body = rf"{integer}(?:\.0+)?"
    return rf"(?<![\w.,-]){sign}(?:\$\s?)?{body}%?(?![\w]|[.,]\d)"


def _phrase_pattern(text: str) -> str:
    body = r"\s+".join(map(re.escape, text.split()))
    start = r"(?<!\w)" if re.match(r"\w", text) else ""
    end = r"(?!\w)" if re.search(r"\w$", text) else ""
    return f"{start}{body}{end}"


def _stated_as_answer(pattern: str) -> str:
    return rf"\banswer\s*(?:is\b)?\s*[:=-]?\s*(?:{pattern})"


def ground_truth_pattern(ground_truth: str) -> str | None:
    """A regex that finds ``ground_truth`` stated as an answer, or None for no ground truth."""
    answer = gold_answer(ground_truth)
    if not answer:
        return None
    letter = _CHOICE_LETTER.fullmatch(answer)
    if letter:
        return _letter_pattern(letter.group(1))
    number = number_pattern(answer)
    if number:
        return number
    phrase = _phrase_pattern(answer)
    return phrase if content_words(answer) else _stated_as_answer(phrase)


def option_pattern(option: str, stem: str) -> str | None:
    """A regex finding the text of the gold option, or None where finding it proves nothing:
    the stem says it too, or it is generic ("None of the above") and so found only where
    stated as the answer."""
    option = option.strip().rstrip(".")
    if not option:
        return None
    pattern = number_pattern(option) or _phrase_pattern(option)
    if re.search(pattern, stem, re.IGNORECASE):
        return None
    if number_pattern(option) or content_words(option):
        return pattern
    return _stated_as_answer(pattern)


def answer_patterns(query: str, ground_truth: str) -> list[tuple[str, str]]:
    """(kind, regex) of every form in which the query's answer may leak."""
    patterns = []
    gold = ground_truth_pattern(ground_truth)
    if gold:
        patterns.append(("ground truth", gold))
    letter = _CHOICE_LETTER.fullmatch(gold_answer(ground_truth))
    parts = split_query(query)
    if letter and letter.group(1) in parts.options:
        option = option_pattern(parts.options[letter.group(1)], parts.stem)
        if option:
            patterns.append(("gold option", option))
    return patterns


def _span_pattern(words: list[str]) -> str:
    return r"\b" + r"\W+".join(map(re.escape, words)) + r"\b"


@dataclass(frozen=True, slots=True)
class LeakageGuard:
    """Finds leaks in a template's text; ``max_query_span_words`` is the longest allowed copy."""

    max_query_span_words: int = DEFAULT_MAX_QUERY_SPAN_WORDS

    def find(self, text: str, query: str, ground_truth: str) -> tuple[Leak, ...]:
        return (*self._answer_leaks(text, query, ground_truth), *self._query_spans(text, query))

    @staticmethod
    def _answer_leaks(text: str, query: str, ground_truth: str) -> list[Leak]:
        leaks = []
        text = without_symbols(text)
        for kind, pattern in answer_patterns(query, ground_truth):
            found = re.search(pattern, text, re.IGNORECASE)
            if found:
                leaks.append(Leak(kind, found.group(0), pattern))
        return leaks

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
                    spans.setdefault(
                        " ".join(words), Leak("query span", " ".join(words), _span_pattern(words))
                    )
        return list(spans.values())


def without_symbols(text: str) -> str:
    """``text`` with each named symbol blanked, so "[value 2]" never reads as the number 2."""
    return _SYMBOL.sub("[]", text)


def mask_leaks(text: str, leaks: tuple[Leak, ...]) -> str:
    """``text`` with every leaked span replaced by "...", longest first: a short leak inside a
    long one (the answer letter inside a copied option) must not break the long one's match."""
    for leak in sorted(leaks, key=lambda leak: len(leak.text), reverse=True):
        text = re.sub(leak.pattern, "...", text, flags=re.IGNORECASE)
    return text
