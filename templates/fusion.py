"""Offline thought-level fusion: the reasoning steps that a query's best responses agree on.

Each selected response is cut into candidate steps (its lines, or its sentences), cleaned of what
carries no method (calculator annotations, the task's boilerplate, sentences that state or point
at the answer or restate the question) and abstracted (quantities as named symbols, people as
placeholders). A step counts as agreed when another response has a step sharing most of its
content words and symbols; the steps of the response with the most agreement are kept, in its
order. A response without reasoning ("The answer is (A).") contributes no step.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from thoughtbank.templates.abstraction import QueryAbstraction
from thoughtbank.templates.leakage import content_words

MAX_STEPS = 4
MAX_STEP_CHARS = 220
MIN_CLAUSE_CHARS = 60
#: Longest run of the query's words a step may repeat: longer, it restates the question.
MAX_RESTATED_QUERY_WORDS = 8
MIN_CONTENT_WORDS = 1
#: Share of two steps' content words and symbols that makes them the same step.
AGREEMENT = 0.34

_CALCULATOR = re.compile(r"<<[^<>]*>>")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[\\$])")
_MARKUP = re.compile(r"\*\*|__|`|^\s*>+\s*|^\s*#{1,3}(?!#)\s*|^\*+")
#: Talk about solving rather than solving: "To solve this, let's break it down step by step."
_META = re.compile(
    r"^(?:to (?:solve|answer|find|calculate|determine)\b[^,.]*,\s*)?(?:let'?s|we "
    r"(?:need|can|will|should)(?: to)?|i will|i'll) (?:break|think|solve|work|go|"
    r"start|analy[sz]e|approach|look|tackle)\b[^.:]*",
    re.IGNORECASE,
)
#: Step numbering, bullets and Roman-numeral statement markers ("II.", "iv)").
_STEP_MARKER = re.compile(
    r"^\s*(?:step\s*\d+\s*[:.)-]?|\(?\d{1,2}[.)](?!\d)|[-*•]"
    r"|\(?(?:i{1,3}|iv|vi{0,3}|ix)[.)](?=\s))\s*",
    re.IGNORECASE,
)
#: Where a response states its answer: "the answer is (G).", "#### 18".
_ANSWER_STATEMENT = re.compile(
    r"\bthe (?:final )?answer is\s*:?\s*\(?[A-J]\)?(?![\w'])\.?|^####[^\n]*", re.I | re.M
)
#: A made-up next question of a few-shot continuation, at a line start.
_NEXT_QUESTION = re.compile(r"^[ \t]*(?:Question|Q|Problem)[ \t]*\d*[ \t]*:", re.M)
#: A unit that opens with an option's letter ("E. w < 3.2 - this is correct") weighs options.
_OPTION_LEAD = re.compile(r"^\s*\(?([A-Z])(?:[.):]|\s*[-–]\s)(?=\s)")
_DISPLAY_MATH = re.compile(r"\\\[|\\\]|\$\$|\\\(|\\\)")
_CONNECTIVE = re.compile(
    r"^(?:so|thus|therefore|hence|then|now|next|finally|first(?:ly)?|"
    r"second(?:ly)?|lastly|also|and|but|well|okay|ok)\b[,:]?\s*",
    re.IGNORECASE,
)
_STATES_ANSWER = re.compile(
    r"answer\s+is|\\boxed|^#+\s*\S|^(?:final\s+)?answer\s*[:：]|^a\s*:|final answer|"
    r"\b(?:correct|best|right)\s+(?:answer|option|choice|response)|"
    r"\b(?:option|choice)\s*\(?[A-J]\)?(?![\w])|\([A-J]\)",
    re.IGNORECASE,
)
_CODE_LINE = re.compile(r"^\s*(?:```|def |class |import |from \w+ import|return\b|print\()")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_SYMBOL = re.compile(r"\[[^\]]+\]")
_PLACEHOLDER = re.compile(r"\b[XYZWV]\b")
_STOP = frozenset(
    """a an the of and or to in on at for by with from is are was were be been being
has have had it its this that these those each every per than then so as if but into out up down
does do did will would can could should may might must there their his her he she they we you
i me my our your them him who which what when where how many much more less not no yes also
just only very all any some such same other another let us we're it's that's there's here
answer answers question questions option options choice choices correct""".split()
)


def _content_words(text: str) -> list[str]:
    """Words of ``text`` outside symbols, placeholders and LaTeX commands that carry meaning."""
    plain = _PLACEHOLDER.sub(" ", _SYMBOL.sub(" ", _LATEX_COMMAND.sub(" ", text)))
    return [word for word in content_words(plain) if word not in _STOP]


def _signature(step: str) -> frozenset[str]:
    """What two steps must share to be the same step: content word stems and symbols."""
    stems = {w.rstrip("s")[:7] for w in _content_words(step)}
    return frozenset(stems | set(_SYMBOL.findall(step)))


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    return bool(a and b) and len(a & b) / len(a | b) >= AGREEMENT


@dataclass(frozen=True)
class StepContext:
    """What cleaning a response needs to know about its query and task."""

    abstraction: QueryAbstraction
    query: str
    option_texts: tuple[str, ...] = ()
    option_letters: frozenset[str] = frozenset()
    strip_boilerplate: Callable[[str], str] = str.strip

    def restates_query(self, unit: str) -> bool:
        return _longest_shared_run(unit, self.query) > MAX_RESTATED_QUERY_WORDS

    def names_an_option(self, unit: str) -> bool:
        lead = _OPTION_LEAD.match(unit)
        if lead and lead.group(1) in self.option_letters:
            return True
        lowered = " ".join(unit.lower().split())
        return any(
            re.search(rf"(?<!\w){re.escape(option)}(?!\w)", lowered) for option in self.option_texts
        )


def _longest_shared_run(text: str, query: str) -> int:
    """Length of the longest run of consecutive words of ``text`` that also occurs in ``query``."""
    words = [w.lower() for w in re.findall(r"\w+", text)]
    query_words = [w.lower() for w in re.findall(r"\w+", query)]
    matcher = SequenceMatcher(None, words, query_words, autojunk=False)
    return matcher.find_longest_match(0, len(words), 0, len(query_words)).size


def _lines(response: str) -> list[str]:
    """Non-empty lines; a line ending with a colon is joined to the line it introduces."""
    lines: list[str] = []
    for line in (line.strip() for line in response.splitlines()):
        if not line:
            continue
        if lines and lines[-1].endswith(":"):
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
    return lines


def _units(response: str) -> list[str]:
    """A response's lines; a long line or a one-line response is cut into its sentences."""
    units: list[str] = []
    for line in _lines(response):
        units.extend(
            _SENTENCE_END.split(line)
            if len(line) > MAX_STEP_CHARS or "\n" not in response.strip()
            else [line]
        )
    return [u.strip() for u in units if u.strip()]


def _tidy(unit: str) -> str:
    unit = _DISPLAY_MATH.sub(" ", _MARKUP.sub("", _STEP_MARKER.sub("", unit)))
    unit = _META.sub("", _CONNECTIVE.sub("", " ".join(unit.split()))).strip(" :;,")
    unit = _STEP_MARKER.sub("", unit).strip(" :;,")
    return unit[:1].upper() + unit[1:]


def _fit(step: str) -> str | None:
    """``step`` if short enough, else cut at its last clause boundary, or None."""
    if len(step) <= MAX_STEP_CHARS:
        return step
    cut = max(step.rfind(mark, 0, MAX_STEP_CHARS) for mark in (", ", "; ", ": "))
    return step[:cut].rstrip() + "." if cut >= MIN_CLAUSE_CHARS else None


def clean_step(unit: str, context: StepContext) -> str | None:
    """The abstracted step a response unit teaches, or None when it teaches no method."""
    if context.names_an_option(unit):
        return None
    unit = _tidy(context.strip_boilerplate(_CALCULATOR.sub("", unit)))
    if (
        not unit
        or _STATES_ANSWER.search(unit)
        or _CODE_LINE.match(unit)
        or unit.endswith("?")
        or context.names_an_option(unit)
        or context.restates_query(unit)
    ):
        return None
    step = _fit(" ".join(context.abstraction.apply(unit).split()))
    if step is None or len(_content_words(step)) < MIN_CONTENT_WORDS:
        return None
    return step if step.endswith((".", ":", ")", "]")) else step + "."


def answered_part(response: str) -> str:
    """``response`` up to its first answer statement or the next question it made up: base
    models run on into a few-shot continuation ("The answer is (G).\n\nQuestion: ...")."""
    answer = _ANSWER_STATEMENT.search(response)
    question = next((m for m in _NEXT_QUESTION.finditer(response) if m.start() > 0), None)
    ends = [answer.end()] if answer else []
    ends += [question.start()] if question else []
    return response[: min(ends)] if ends else response


def response_steps(response: str, context: StepContext) -> list[str]:
    """The cleaned, abstracted steps of one response, in order, without repeats."""
    steps = (clean_step(unit, context) for unit in _units(answered_part(response)))
    return list(dict.fromkeys(step for step in steps if step))


def fuse_steps(per_response: Sequence[Sequence[str]], limit: int = MAX_STEPS) -> tuple[str, ...]:
    """The steps the responses agree on, in the order of the response that agrees most.

    With one reasoning response, or none agreeing, its steps spread over its length.
    """
    signatures = [[_signature(step) for step in steps] for steps in per_response]

    def support(response: int, step: int) -> int:
        mine = signatures[response][step]
        return sum(
            any(_similar(mine, other) for other in theirs)
            for index, theirs in enumerate(signatures)
            if index != response
        )

    scored = [[support(r, s) for s in range(len(steps))] for r, steps in enumerate(per_response)]
    candidates = [r for r, steps in enumerate(per_response) if steps]
    if not candidates:
        return ()
    backbone = max(candidates, key=lambda r: (sum(scored[r]), -r))
    steps, support_of = per_response[backbone], scored[backbone]
    agreed = [i for i, count in enumerate(support_of) if count > 0]
    if agreed:
        best = sorted(sorted(agreed, key=lambda i: -support_of[i])[:limit])
        return tuple(steps[i] for i in best)
    return _spread(steps, limit)


def _spread(steps: Sequence[str], limit: int) -> tuple[str, ...]:
    """Up to ``limit`` steps evenly spread from first to last."""
    if len(steps) <= limit:
        return tuple(steps)
    last = len(steps) - 1
    return tuple(steps[round(i * last / (limit - 1))] for i in range(limit))


def code_steps(response: str) -> tuple[str, ...]:
    """Method steps of a code answer, read from its syntax tree (never executed): the function
    to define, the constructs and built-ins it relies on, what it returns."""
    try:
        tree = ast.parse(response)
    except SyntaxError:
        return ()
    functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
    if not functions:
        return ()
    main = functions[0]
    arguments = ", ".join(arg.arg for arg in main.args.args)
    steps = [f"Define {main.name}({arguments}) as the task asks."]
    constructs = _constructs(tree, main.name)
    if constructs:
        steps.append(f"Build the result with {_join(constructs)}.")
    imports = sorted(
        {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in (
                node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
            )
        }
    )
    if imports:
        steps.insert(1, f"Import the modules it needs: {', '.join(imports)}.")
    steps.append("Return the result and check it against the examples the task gives.")
    return tuple(steps)


def _constructs(tree: ast.AST, function: str) -> list[str]:
    """The control structures and built-in calls a solution uses, in a fixed order."""
    kinds: dict[type[ast.AST], str] = {
        ast.For: "a loop",
        ast.While: "a while loop",
        ast.ListComp: "a list comprehension",
        ast.GeneratorExp: "a generator expression",
        ast.DictComp: "a dict comprehension",
        ast.SetComp: "a set comprehension",
        ast.Lambda: "a lambda",
        ast.If: "conditions",
        ast.Slice: "slicing",
    }
    found = {
        label for node in ast.walk(tree) for kind, label in kinds.items() if isinstance(node, kind)
    }
    calls = sorted(
        {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        - {function}
    )
    methods = sorted(
        {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
    )
    if any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function
        for node in ast.walk(tree)
    ):
        found.add("recursion")
    parts = [label for label in kinds.values() if label in found]
    parts += ["recursion"] if "recursion" in found else []
    parts += [f"{name}()" for name in calls[:5]] + [f".{name}()" for name in methods[:4]]
    return parts


def _join(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
