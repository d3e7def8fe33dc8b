"""No code path of the package can run or unpickle data: the sources are parsed and searched for
``eval``/``exec``/``compile`` calls, pickle-family imports and loaders that unpickle
(``allow_pickle=True``, ``torch.load`` without ``weights_only=True``, ``yaml.load``,
``pandas.read_pickle``).

The AST is searched rather than the text, so comments and strings that name these functions do
not count, and an alias (``from pickle import loads as l``) does not escape.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO_ROOT

SKIPPED_DIRS = {"tests", ".venv", "build", "dist", ".git", "__pycache__"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "marshal",
    "shelve",
    "joblib",
}
FORBIDDEN_ATTRIBUTE_CALLS = {"read_pickle", "unsafe_load", "full_load"}


def package_sources() -> list[Path]:
    """Every Python file that ships or runs as part of the project, tests excluded."""
    return sorted(
        p for p in REPO_ROOT.rglob("*.py") if not SKIPPED_DIRS & set(p.relative_to(REPO_ROOT).parts)
    )


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def call_problem(call: ast.Call) -> str | None:
    """Why ``call`` can execute or unpickle data, or ``None`` when it cannot."""
    func = call.func
    if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
        return f"{func.id}()"
    if _is_true(_keyword(call, "allow_pickle")):
        return "allow_pickle=True"
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr in FORBIDDEN_ATTRIBUTE_CALLS:
        return f".{func.attr}()"
    owner = func.value.id if isinstance(func.value, ast.Name) else ""
    if owner == "torch" and func.attr == "load" and not _is_true(_keyword(call, "weights_only")):
        return "torch.load() without weights_only=True"
    if owner == "yaml" and func.attr == "load":
        return "yaml.load() (use yaml.safe_load)"
    return None


def import_problem(node: ast.Import | ast.ImportFrom) -> str | None:
    if isinstance(node, ast.ImportFrom):
        names = [node.module or ""]
    else:
        names = [alias.name for alias in node.names]
    bad = [n for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
    return f"imports {', '.join(bad)}" if bad else None


def problems(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, problem) for every forbidden call or import in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            problem = call_problem(node)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            problem = import_problem(node)
        else:
            continue
        if problem:
            found.append((node.lineno, problem))
    return found


def problems_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [f"{path.relative_to(REPO_ROOT)}:{line}: {problem}" for line, problem in problems(tree)]


def test_the_scan_covers_every_stage() -> None:
    scanned = {str(p.relative_to(REPO_ROOT)) for p in package_sources()}
    assert {
        "server.py",
        "cli.py",
        "templates/readers.py",
        "index/artifact.py",
        "retriever/serving/engine.py",
    } <= scanned


@pytest.mark.parametrize(
    "snippet",
    [
        "eval(text)",
        "exec(code)",
        "import pickle",
        "from pickle import loads as l",
        "import numpy as np\nnp.load(path, allow_pickle=True)",
        "torch.load(path)",
        "yaml.load(stream)",
        "pandas.read_pickle(path)",
    ],
)
def test_the_scan_catches_each_forbidden_form(snippet: str) -> None:
    assert problems(ast.parse(snippet)), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "re.compile(pattern)",
        "np.load(path, allow_pickle=False)",
        "torch.load(path, weights_only=True)",
        "yaml.safe_load(stream)",
        "# eval(x) in a comment",
    ],
)
def test_the_scan_allows_safe_forms(snippet: str) -> None:
    assert not problems(ast.parse(snippet)), snippet


def test_no_source_can_run_or_unpickle_data() -> None:
    found = [problem for path in package_sources() for problem in problems_in(path)]
    assert not found, "\n".join(found)
