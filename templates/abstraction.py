"""Abstraction of a query's specifics: quantities become named symbols, people placeholders.

A template must teach a method, not restate one query. ``QueryAbstraction`` names each quantity of
the query by what follows it ("16 eggs per day" -> ``[eggs per day]``), names the values the
responses compute from them by the unit they carry (``[dollars]``), keeps well-known constants
(12 per dozen, 60 minutes per hour) and replaces the query's people by X, Y, Z. The same value
gets the same symbol in every response, so steps taken from different responses stay consistent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: A number as written; never an exponent or a subscript ("10^{-11}", "x_2").
_NUMBER = re.compile(
    r"(?<![\w.^_])(?<!\^\{-)(?<!\^\{)(?<!_\{)(?P<dollar>\$)?"
    r"(?P<value>\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)"
    r"(?P<percent>%)?(?![\w])"
)
_WORD_NUMBERS = {
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "fifteen": "15",
    "twenty": "20",
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "hundred": "100",
    "twice": "2",
    "half": "0.5",
}
_WORD_NUMBER = re.compile(r"\b(?:" + "|".join(_WORD_NUMBERS) + r")\b", re.IGNORECASE)
_REPEATED_UNIT = re.compile(r"\[(?P<name>[^\]]+)\](?P<after>(?: [a-z]+){1,4}\b)")
_LATEX_TEXT = re.compile(r"\\(?:mathrm|text|textbf|mathbf|operatorname)\s*\{([^{}]*)\}")
_LATEX_POWER = re.compile(r"[\^_](?:\{[^{}]*\}|-?\d+)")
_LATEX_MARKUP = re.compile(r"\\[A-Za-z]+|[{}~^$_]")
_COMPUTED = re.compile(r"=\s*\$?(?P<value>\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)")
#: Where a quantity's name ends: punctuation, a line break or another number.
_CLAUSE_END = re.compile(r"[^\w \t'$%-]|\d")
#: A word after a capitalized one that shows it names someone doing something.
_ACTS = re.compile(
    r"^(?:'s|’s|\s+(?:is|was|has|had|can|will|would|could|wants|needs|got|"
    r"bought|made|took|gave|went|said|and|[a-z]+(?:s|ed)\b))"
)

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
#: Values a method may state as they are: units of time, dozens, percent, simple factors.
CONSTANTS = frozenset(
    {
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "7",
        "10",
        "12",
        "24",
        "30",
        "52",
        "60",
        "100",
        "365",
        "1000",
        "0.5",
    }
)
#: Words that never start or end a quantity's name.
_NAME_STOP = frozenset(
    """a an the of and or to in on at for by with from is are was were be been
has have had it its this that these those each every per than then so as if but into out up
does do did will would can could should may might must there their his her he she they we you
i me my our your them him who which what when where how many much more less left total""".split()
)
#: Capitalized words that are no person's name, wherever they stand.
_NOT_NAMES = frozenset(
    """a an the if in on at of for to and or but so as it its he she they we
you i his her their our my this that these those there then when where what which who whom whose
how why each every all some any no not one two three four five six seven eight nine ten after
before during since until while once also however therefore thus first second third next last
finally now today tomorrow yesterday monday tuesday wednesday thursday friday saturday sunday
january february march april may june july august september october november december mr mrs
ms dr let suppose given find calculate determine compute what's it's use write solve evaluate
simplify express give show estimate identify explain describe consider assume select choose round
list name define convert prove state""".split()
)
MIN_NAME_WORDS, MAX_NAME_WORDS = 2, 4
#: Words that start a new clause: "$10 an hour but they raised" names "[price hour]".
_NAME_BREAK = frozenset(
    """but and or so then if when while which who that they he she it we until because since
unless whether is are was were can could will would should must may might no not""".split()
)
PERSON_PLACEHOLDERS = ("X", "Y", "Z", "W", "V")


def _canonical(value: str) -> str:
    """One spelling per number: '1,200' and '1200.0' are both '1200'."""
    number = float(value.replace(",", ""))
    return str(int(number)) if number.is_integer() else repr(number)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _following_name(text: str, end: int, limit: int) -> list[str]:
    """Up to ``limit`` content words after a number, up to the next punctuation mark."""
    clause = _CLAUSE_END.split(text[end:], maxsplit=1)[0]
    words = _words(clause)
    while words and words[0] in _NAME_STOP - {"per"}:
        words.pop(0)
    name: list[str] = []
    for word in words:
        if sum(w not in _NAME_STOP for w in name) == limit or word in _NAME_BREAK:
            break
        name.append(word)
    while name and name[-1] in _NAME_STOP:
        name.pop()
    return name


def _preceding_name(text: str, start: int) -> list[str]:
    clause = _CLAUSE_END.split(text[:start])[-1]
    words = [w for w in _words(clause) if w not in _NAME_STOP]
    return words[-2:]


@dataclass(frozen=True, slots=True)
class _Quantity:
    value: str
    name: str


def _without_latex(text: str) -> str:
    """``text`` with LaTeX markup dropped, so that '$1.0 \\mathrm{~mol}$' reads '1.0 mol'."""
    text = _LATEX_POWER.sub(" ", _LATEX_TEXT.sub(r" \1 ", text))
    return " ".join(_LATEX_MARKUP.sub(" ", text).split())


def _query_quantities(query: str) -> list[_Quantity]:
    """Each number of the query (digits or number words) with a name unique within the query."""
    is_latex = "\\" in query
    query = _without_latex(query) if is_latex else query
    found: list[tuple[int, int, str, str]] = []
    for match in _NUMBER.finditer(query):
        dollar = match["dollar"] and not is_latex
        prefix = "price" if dollar else ("percent" if match["percent"] else "")
        found.append((match.start(), match.end(), _canonical(match["value"]), prefix))
    for match in _WORD_NUMBER.finditer(query):
        found.append((match.start(), match.end(), _WORD_NUMBERS[match[0].lower()], ""))
    quantities: list[_Quantity] = []
    used: set[str] = set()
    for start, end, value, prefix in sorted(found):
        if any(q.value == value for q in quantities):
            continue
        name = _unique_name(query, start, end, prefix, used)
        if is_latex and not re.search(r"[a-z]{3,}", name.removeprefix("value")):
            continue  # a number of a formula, not a quantity with a unit
        quantities.append(_Quantity(value, name))
    return quantities


def _unique_name(query: str, start: int, end: int, prefix: str, used: set[str]) -> str:
    """The shortest name after the number that no other quantity has, else one numbered."""
    for limit in range(MIN_NAME_WORDS, MAX_NAME_WORDS + 1):
        words = _following_name(query, end, limit) or _preceding_name(query, start)
        name = " ".join(filter(None, [prefix, *words])) or "value"
        if name not in used:
            break
    base, count = name, 2
    while name in used:
        name, count = f"{base} {count}", count + 1
    used.add(name)
    return name


def person_names(query: str, context: str = "") -> tuple[str, ...]:
    """Capitalized words of ``query`` that act as people's names, in order of appearance.

    A word is a name when it is not a known non-name, is never written in lower case in the
    query or ``context`` (the responses: "If" or "An" are capitalized only at sentence starts)
    and acts somewhere: "Janet's", "Toby is", "Mary buys" (not "degrees Celsius in").
    """
    lower_forms = {w for w in _WORD.findall(f"{query} {context}") if w.islower()}
    names: list[str] = []
    for match in re.finditer(r"\b[A-Z][a-z]+\b", query):
        word = match[0]
        if (
            word.lower() not in _NOT_NAMES | lower_forms
            and word not in names
            and _ACTS.match(query[match.end() :])
        ):
            names.append(word)
    return tuple(names[: len(PERSON_PLACEHOLDERS)])


class QueryAbstraction:
    """Rewrites texts about one query so that no quantity or person of the query survives."""

    def __init__(self, query: str, responses: Iterable[str] = ()) -> None:
        texts = list(responses)
        self._symbols: dict[str, str] = {q.value: q.name for q in _query_quantities(query)}
        self._given = tuple(self._symbols.values())
        names = person_names(query, " ".join(texts))
        self._names = dict(zip(names, PERSON_PLACEHOLDERS, strict=False))
        self._name_pattern = (
            re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b") if names else None
        )
        for text in texts:
            self._name_results(text)

    @property
    def quantity_names(self) -> tuple[str, ...]:
        """Names of the quantities the query gives (not of the values computed from them)."""
        return self._given

    def _name_results(self, text: str) -> None:
        """Name each value a response computes (not in the query, not a constant) by the first
        unit written after it."""
        names: dict[str, list[str]] = {}
        computed = {_canonical(m["value"]) for m in _COMPUTED.finditer(text)}
        for match in _NUMBER.finditer(text):
            value = _canonical(match["value"])
            constant = value in CONSTANTS and value not in computed
            if value not in self._symbols and not constant and not names.get(value):
                names[value] = _following_name(text, match.end(), 2)
        used = set(self._symbols.values())
        for value, words in names.items():
            name = base = " ".join(words) or "result"
            count = 2
            while name in used:
                name, count = f"{base} {count}", count + 1
            self._symbols[value] = name
            used.add(name)

    def symbol(self, value: str) -> str | None:
        """The bracketed symbol of a number as written, or None for a constant kept as it is."""
        name = self._symbols.get(_canonical(value))
        return f"[{name}]" if name else None

    def apply(self, text: str) -> str:
        """``text`` with every non-constant number as its symbol and every person as X, Y..."""
        text = _WORD_NUMBER.sub(lambda m: self._word_number(m), text)
        text = _NUMBER.sub(self._number, text)
        text = _REPEATED_UNIT.sub(self._drop_repeated_unit, text)
        if self._name_pattern is not None:
            text = self._name_pattern.sub(lambda m: self._names[m[0]], text)
        return text

    def _word_number(self, match: re.Match[str]) -> str:
        return self.symbol(_WORD_NUMBERS[match[0].lower()]) or match[0]

    @staticmethod
    def _drop_repeated_unit(match: re.Match[str]) -> str:
        """'[duck eggs] duck eggs' -> '[duck eggs]': the symbol already says its unit."""
        name = re.sub(r" \d+$", "", match["name"]).split()
        after = match["after"].split()
        if after[: len(name)] != name:
            return match[0]
        return " ".join([f"[{match['name']}]", *after[len(name) :]])

    def _number(self, match: re.Match[str]) -> str:
        return self.symbol(match["value"]) or match[0]
