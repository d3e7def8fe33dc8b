"""Text that is safe to place in a prompt or print on a terminal, for every stage.

Templates are distilled from logged model output, which anyone who can write to a log can
shape. Two kinds of hostile text are handled here:

* **Invisible and control characters**: terminal escape sequences (ANSI CSI, OSC, DCS...),
  control characters, zero-width, bidi and other format characters. ``strip_control`` removes
  them (mining applies it when it writes templates); every Unicode line break becomes ``\\n``.
* **Chat markers**: special tokens and role prefixes that a model reads as a new turn.
  ``sanitize_text`` removes them (serving applies it when a version loads).

A marker is recognised by its shape, not by a list of known strings: any ``<|...|>`` token,
any ``[UPPER_SNAKE]`` tag, a role word with a colon opening a line, and so on, matched in
the NFKC form of the text so that fullwidth and other compatibility variants are caught.
Removal repeats until nothing changes, so markers nested in markers cannot re-form.
This module imports only the standard library.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Callable

TRUNCATION_MARK = " [...]"

# Terminal escape sequences: CSI (ESC [ or 0x9b, parameters, one final byte), OSC/DCS/SOS/PM/
# APC strings up to their terminator (or the line's end), and two-byte ESC sequences.
_ESCAPE_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Every character Unicode treats as a line break; only "\n" is kept, so "^" sees them all.
_LINE_BREAKS = re.compile("\r\n|[\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# Letters that render as nothing (Hangul fillers, the combining grapheme joiner).
_INVISIBLE_LETTERS = "\u034f\u115f\u1160\u3164\uffa0"
# Planes that hold every control (Cc), format (Cf) and surrogate (Cs) character.
_SCANNED_RANGES = (range(0x20000), range(0xE0000, 0xE1000))


@functools.cache
def _unsafe_characters() -> re.Pattern[str]:
    """Control, format (zero-width, bidi) and surrogate characters, newline and tab excepted.

    Built from the running Python's Unicode database on first use, so new ones are included;
    written as ranges, which the regex engine tests much faster than a set of single ones.
    """
    unsafe = sorted(
        {
            code
            for code in itertools.chain.from_iterable(_SCANNED_RANGES)
            if unicodedata.category(chr(code)) in ("Cc", "Cf", "Cs") and chr(code) not in "\n\t"
        }
        | {ord(char) for char in _INVISIBLE_LETTERS}
    )
    runs = itertools.groupby(enumerate(unsafe), key=lambda pair: pair[1] - pair[0])
    ranges = [[code for _, code in run] for _, run in runs]
    return re.compile(
        "[" + "".join(f"{re.escape(chr(r[0]))}-{re.escape(chr(r[-1]))}" for r in ranges) + "]"
    )


def strip_control(text: str) -> str:
    """``text`` without escape sequences or invisible characters; line breaks become ``\\n``."""
    # Every escape sequence and line break but two starts with a control character, so text
    # without any is returned as it is after one search instead of three rewrites.
    if not _unsafe_characters().search(text) and "\u2028" not in text and "\u2029" not in text:
        return text
    text = _ESCAPE_SEQUENCES.sub("", text)
    text = _LINE_BREAKS.sub("\n", text)
    return _unsafe_characters().sub("", text)


def replace_unsafe(text: str, replacement: Callable[[str], str]) -> str:
    """``text`` with each control or invisible character ``c`` (newline and tab excepted)
    replaced by ``replacement(c)``."""
    return _unsafe_characters().sub(lambda match: replacement(match.group()), text)


def terminal_safe(text: str) -> str:
    """``text`` with every control or invisible character shown as a Python escape
    (``\\x1b``), so printing it cannot move the cursor, recolour, retitle or reorder text."""
    return replace_unsafe(text, lambda char: char.encode("unicode_escape").decode("ascii"))


def _nfkc(text: str) -> str:
    """The form markers are matched in (fullwidth ``＜｜`` read as ``<|``), for control-free
    text: NFKC maps no character to a control, format or line-break one."""
    return unicodedata.normalize("NFKC", text)


# Roles of chat formats (OpenAI, Llama 3 ipython, Gemma model, ShareGPT gpt, legacy function).
_ROLES = r"(?:system|assistant|user|human|ai|developer|tool|model|bot|function|ipython|gpt|chatbot)"
# Special tokens: any <|...|> (ChatML, Llama 3, Phi; DeepSeek's <｜...｜> after NFKC), <<SYS>>
# shapes, named angle tokens and Gemma's <start_of_...>/<end_of_...>, any [UPPER_SNAKE] control
# tag (Mistral's [SYSTEM_PROMPT], [TOOL_CALLS]...) and named square tags ([INST], [IMG]).
# Square tags count in their exact case (other cases are code: "arr[out_of_place]"), the named
# ones in any case where they cannot be a subscript.
# A role right after a turn-opening token ("<|im_start|>system") goes with it.
_SPECIAL_TOKENS = re.compile(
    rf"(?:<\|[^<>|\n]{{0,64}}\|>|<start_of_turn>)(?:[ \t]*{_ROLES}\b)?"
    r"|<</?[a-z_]{1,32}>>"
    rf"|</?(?:(?:start|end|begin)_of_[a-z_]{{1,32}}|tool_call|tool_response|think|"
    rf"s|bos|eos|eot|pad|unk|mask|sep|cls|{_ROLES})>"
    r"|\[(?<![\w)\]]\[)/?(?:inst|sys|img|think)\]"
    r"|(?-i:\[/?(?:[A-Z]+(?:_[A-Z]+)+|INST|SYS|IMG|THINK)\])",
    re.IGNORECASE,
)
# A line opening a chat turn: its first word is a role followed by a colon ("user:",
# "**System:**", "1. user:", "> Human :"), or a header "#" before "Instruction:", "Input:" or
# "Response:" (Alpaca). Numbering and bullets before it are kept, so a numbered step stays
# numbered. The lead-in repeats single characters or letter-dot pairs, which cannot overlap,
# so a hostile line costs linear time.
_LEAD_IN_PATTERN = r"(?:[^\w\n]|\d|[a-z][.)])*"
_LEAD_IN = re.compile(_LEAD_IN_PATTERN, re.IGNORECASE)
_LIST_MARKS = re.compile(
    r"(?:[ \t]*(?:\d+[.)]|[a-z][.)]|[-+*\u2022](?=[ \t])))*[ \t]*", re.IGNORECASE
)
_ROLE = re.compile(rf"{_ROLES}\b[^\w\n:]{{0,8}}:[*_]*[ \t]*", re.IGNORECASE)
_HEADER_ROLE = re.compile(
    r"(?:instruction|input|response)\b[^\w\n:]{0,8}(?::[*_]*[ \t]*|$)", re.IGNORECASE
)
# Every line that may open a chat turn, found in one search (the header "#" not required).
_ROLE_LINE = re.compile(
    rf"^{_LEAD_IN_PATTERN}(?:{_ROLES}\b[^\w\n:]{{0,8}}:|(?:instruction|input|response)\b)",
    re.IGNORECASE | re.MULTILINE,
)
_BLANK_RUNS = re.compile(r"\n{3,}")
# Passes of removal before nested markers are taken as hostile (real text nests none).
_MAX_NESTING = 8
_TOKEN_BRACKETS = re.compile(r"[<>\[\]|]")


def _match_end(pattern: re.Pattern[str], line: str) -> int:
    found = pattern.match(line)
    assert found is not None  # every part of the pattern is optional, so it always matches
    return found.end()


def _role_prefix(line: str) -> tuple[int, int] | None:
    """The span of ``line`` to remove when it opens a chat turn (numbering and bullets kept)."""
    start = _match_end(_LEAD_IN, line)
    role = _ROLE.match(line, start)
    if role is None and "#" in line[:start]:
        role = _HEADER_ROLE.match(line, start)
    if role is None:
        return None
    return min(_match_end(_LIST_MARKS, line), start), role.end()


def _has_marker(line: str) -> bool:
    """Whether one line of folded text holds a special token or opens a chat turn."""
    return bool(_SPECIAL_TOKENS.search(line)) or _role_prefix(line) is not None


def _remove_markers_once(line: str) -> str:
    cleaned = _SPECIAL_TOKENS.sub("", line)
    while role := _role_prefix(cleaned):  # "user: user: ..." in one pass, not one each
        cleaned = cleaned[: role[0]] + cleaned[role[1] :]
    return cleaned.rstrip()


def _without_markers(line: str) -> str:
    """Folded ``line`` with markers removed until none is left (nested ones re-form)."""
    # Removal joins folded characters only, which cannot form fullwidth or hidden ones again,
    # so folding once is enough.
    for _ in range(_MAX_NESTING):
        cleaned = _remove_markers_once(line)
        if cleaned == line:
            return cleaned
        line = cleaned
    # Deeper nesting is hostile and costs a pass per level: without brackets no token re-forms.
    return _remove_markers_once(_TOKEN_BRACKETS.sub("", line))


def _clean_line(line: str) -> str:
    """One line of control-free text without markers."""
    # Only lines with a marker are rewritten in their folded form: a clean line keeps its
    # exact characters, so "x²" is not turned into "x2" by NFKC.
    folded = _nfkc(line)
    return _without_markers(folded) if _has_marker(folded) else line


def _clean(text: str) -> str:
    text = strip_control(text)
    if _may_hold_marker(_nfkc(text)):
        text = "\n".join(map(_clean_line, text.split("\n")))
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _may_hold_marker(folded: str) -> bool:
    """Whether some line of ``folded`` may hold a marker: one search over the whole text, so
    the common clean text is not checked line by line."""
    return bool(_SPECIAL_TOKENS.search(folded) or _ROLE_LINE.search(folded))


def sanitize_text(text: str, max_chars: int) -> str:
    """``text`` without control characters, special tokens or chat-role prefixes, at most
    ``max_chars`` long; ``sanitize_text(sanitize_text(t, n), n) == sanitize_text(t, n)``.

    Role prefixes are removed but the rest of their line is kept: the content may be a
    legitimate reasoning step; what must go is the marker that would make it a new turn.
    """
    cleaned = _clean(text[: 4 * max_chars])  # what is read is bounded by what may be kept
    if len(cleaned) <= max_chars:
        return cleaned
    cut = max(0, max_chars - len(TRUNCATION_MARK))
    return _clean(cleaned[:cut].rstrip() + TRUNCATION_MARK)[:max_chars]
