"""Split a multiple-choice query into its question stem and its lettered options.

Logs render options into the query text in several layouts: one option per line ("A. text",
"(A) text", "A)text", "A: text"), possibly under an "Options:" or "Choices:" header, or all on
one line ("(A) x (B) y (C) z", "Answer Choices: (A) 10 (B) 20", or any of these layouts with
its lines folded into one). Options are recognised only as
a run of consecutive letters starting at A, so a lone "A." in prose, "P (A) = 0.2" in a formula
or Roman-numeral statements ("I. ...", "II. ...") are not taken for options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: An option marker at the start of a line: "A. text", "A) text", "A)40", "(A) text", "A: text".
#: "A." and "A:" need a space after them so that "A.shape" or "A:B" in code is no option.
_LINE_OPTION = re.compile(r"^\s*(?:\(([A-Z])\)|([A-Z])\)|([A-Z])[.:](?=\s|$))\s*(.*)$")
#: A header that introduces options, alone on its line or followed by inline options.
_HEADER_WORDS = r"(?:answer\s+)?(?:options|choices)\s*:"
_HEADER = re.compile(_HEADER_WORDS + r"\s*", re.IGNORECASE)
_HEADER_AT_END = re.compile(r"(?:^|(?<=\s))" + _HEADER_WORDS + r"\s*$", re.IGNORECASE)
#: An inline marker "(A)", "A)" or "A." after a space, the start or a colon. Folded queries
#: (``normalize_query`` joins lines) carry MMLU-Pro's options as "... A. 0.525 B. 0.800 ...".
_INLINE_PAREN = re.compile(r"(?:^|(?<=[\s:]))\(([A-Z])\)\s*")
_INLINE_BARE = re.compile(r"(?:^|(?<=[\s:,;]))([A-Z])[.)]\s*")
#: Fewest options of an inline run that has no header: two could be a formula's "(A) ... (B)".
MIN_INLINE_OPTIONS_WITHOUT_HEADER = 3
MIN_OPTIONS = 2


@dataclass(frozen=True, slots=True)
class QueryParts:
    """A query's question without its options, and its options (letter -> text, in order)."""

    stem: str
    options: dict[str, str] = field(default_factory=dict)


def _letter(match: re.Match[str]) -> str:
    return next(group for group in match.groups()[:3] if group)


def _next_letter(letter: str) -> str:
    return chr(ord(letter) + 1)


@dataclass
class _Block:
    """A run of option lines: where it starts and ends (line indexes) and its options."""

    start: int
    end: int = 0
    options: dict[str, list[str]] = field(default_factory=dict)


def _read_block(lines: list[str], start: int) -> _Block:
    """The option run beginning with the "A" line at ``start``; a line that is no next marker
    continues the current option, a blank line ends the run."""
    block = _Block(start)
    expected, current = "A", ""
    index = start
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            break
        match = _LINE_OPTION.match(line)
        if match and _letter(match) == expected:
            current = expected
            block.options[current] = [match.group(4)]
            expected = _next_letter(expected)
        elif match and _letter(match) == "A":
            break  # a second run starts here
        else:
            block.options[current].append(line.strip())
        index += 1
    block.end = index
    return block


def _line_options(query: str) -> QueryParts | None:
    """The last run of one-option-per-line options in ``query``, or None."""
    lines = query.split("\n")
    blocks = [
        _read_block(lines, index)
        for index, line in enumerate(lines)
        if (match := _LINE_OPTION.match(line)) and _letter(match) == "A"
    ]
    blocks = [block for block in blocks if len(block.options) >= MIN_OPTIONS]
    if not blocks:
        return None
    block = blocks[-1]
    before = "\n".join(lines[: block.start]).rstrip()
    header = _HEADER_AT_END.search(before)
    if header:
        before = before[: header.start()].rstrip()
    after = "\n".join(lines[block.end :]).strip()
    stem = f"{before}\n\n{after}" if after and before else before or after
    options = {letter: " ".join(" ".join(parts).split()) for letter, parts in block.options.items()}
    return QueryParts(stem.strip(), options)


def _consecutive_run(markers: list[re.Match[str]]) -> list[re.Match[str]]:
    """The longest run of markers lettered A, B, C, ... in order."""
    best: list[re.Match[str]] = []
    for index, marker in enumerate(markers):
        if marker.group(1) != "A":
            continue
        run = [marker]
        for following in markers[index + 1 :]:
            if following.group(1) == _next_letter(run[-1].group(1)):
                run.append(following)
        if len(run) > len(best):
            best = run
    return best


def _inline_options_in_line(line: str) -> tuple[int, dict[str, str]] | None:
    """(where the options start, options) of one line holding all its options, or None."""
    header = _HEADER.search(line)
    region_start = header.end() if header else 0
    run = max(
        (
            _consecutive_run(list(pattern.finditer(line, region_start)))
            for pattern in (_INLINE_PAREN, _INLINE_BARE)
        ),
        key=len,
    )
    needed = MIN_OPTIONS if header else MIN_INLINE_OPTIONS_WITHOUT_HEADER
    if len(run) < needed:
        return None
    ends = [marker.start() for marker in run[1:]] + [len(line)]
    options = {
        marker.group(1): line[marker.end() : end].strip().rstrip(",;").strip()
        for marker, end in zip(run, ends, strict=True)
    }
    # A log may cut its last option off ("... (D) because (E)"): the run ends before it.
    while options and not options[run[len(options) - 1].group(1)]:
        options.popitem()
    if len(options) < needed or not all(options.values()):
        return None
    return (header.start() if header else run[0].start()), options


def _inline_options(query: str) -> QueryParts | None:
    """Options written on one line of ``query`` (the last such line), or None."""
    lines = query.split("\n")
    for index in range(len(lines) - 1, -1, -1):
        found = _inline_options_in_line(lines[index])
        if found is None:
            continue
        start, options = found
        before = "\n".join([*lines[:index], lines[index][:start]]).strip()
        after = "\n".join(lines[index + 1 :]).strip()
        stem = f"{before}\n\n{after}" if after and before else before or after
        return QueryParts(stem.strip(), options)
    return None


def split_query(query: str) -> QueryParts:
    """The stem and the options of ``query``; ``options`` is empty when it has none.

    One-option-per-line layouts win over inline ones: a stem may itself quote "(A) ... (B) ..."
    statements above its real options.
    """
    return _line_options(query) or _inline_options(query) or QueryParts(query.strip(), {})
