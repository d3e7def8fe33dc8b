"""The package's layout holds: stages import only earlier stages at module level, no module
imports itself back through others, and the client SDK loads none of the engine."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SKIPPED_FOLDERS = {"tests", "benchmarks", "build", ".venv"}
# Stages in data-flow order; a module may import its own stage, earlier ones and the shared
# top-level modules (schema, normalize, text_safety, files, cli_common, extras, progress,
# _version).
STAGES = (
    "thoughtbank.templates",
    "thoughtbank.index",
    "thoughtbank.protos",
    "thoughtbank.retriever",
    "thoughtbank.retriever.serving",
    "thoughtbank.retriever.evaluation",
    "thoughtbank.server",
    "thoughtbank.demo",
    "thoughtbank.cli",
    "thoughtbank.doctor",
    "thoughtbank.completion",
)
ENGINE_MODULES = ("torch", "sentence_transformers", "faiss", "pyarrow", "sklearn", "tqdm")


def package_modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        relative = path.relative_to(PACKAGE_ROOT)
        if relative.parts[0] in SKIPPED_FOLDERS or path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
            continue
        parts = ["thoughtbank", *relative.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _runtime_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements that run on import (``if TYPE_CHECKING:`` blocks do not)."""
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.If | ast.Try):
            nested = [*node.body, *node.orelse]
            if isinstance(node, ast.Try):
                nested += [s for handler in node.handlers for s in handler.body]
            found.extend(_runtime_statements(nested))
        else:
            found.append(node)
    return found


def module_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports when it is imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    imported: set[str] = set()
    for node in _runtime_statements(tree.body):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                imported.add(submodule if submodule in modules else base)
    return {m for m in imported if m in modules and m != name}


def stage_of(module: str) -> int | None:
    """Position of ``module``'s stage (the longest matching prefix); None for shared modules."""
    matches = [
        i for i, stage in enumerate(STAGES) if module == stage or module.startswith(stage + ".")
    ]
    return max(matches, key=lambda i: len(STAGES[i])) if matches else None


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: module_imports(name, path, modules) for name, path in modules.items()}


def test_no_stage_imports_a_later_one() -> None:
    graph = import_graph()
    backwards = []
    for module, imported in graph.items():
        own = stage_of(module)
        for target in imported:
            target_stage = stage_of(target)
            if target_stage is not None and (own is None or target_stage > own):
                backwards.append(f"{module} -> {target}")
    assert not backwards, "module-level imports of a later stage:\n" + "\n".join(backwards)


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_check_sees_the_stages() -> None:
    graph = import_graph()
    assert "thoughtbank.retriever.serving.engine" in graph["thoughtbank.server"]
    assert "thoughtbank.index" in graph["thoughtbank.retriever.serving.engine"]


def test_evaluation_reaches_the_index_through_its_public_names() -> None:
    private = []
    for path in (PACKAGE_ROOT / "retriever" / "evaluation").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "thoughtbank.index."
            ):
                private.append(f"{path.name}: {node.module}")
    assert not private, private


@pytest.mark.parametrize("module", ["thoughtbank.retriever", "thoughtbank.retriever.langchain"])
def test_client_sdk_loads_no_engine(module: str) -> None:
    code = (
        f"import sys, {module}\nprint(','.join(m for m in {ENGINE_MODULES!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "", f"import {module} loaded {loaded}"


def test_the_top_level_holds_only_the_fixed_folders() -> None:
    folders = {
        p.name
        for p in PACKAGE_ROOT.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in {"build", "dist"}
    }
    folders -= {p.name for p in PACKAGE_ROOT.glob("*.egg-info")}
    assert folders <= {"templates", "retriever", "protos", "index", "tests", "benchmarks", "demo"}


def test_every_package_folder_is_installed() -> None:
    declared = set(
        tomllib.loads((PACKAGE_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
            "packages"
        ]
    )
    on_disk = {
        ".".join(["thoughtbank", *init.parent.relative_to(PACKAGE_ROOT).parts])
        for init in PACKAGE_ROOT.rglob("__init__.py")
        if init.relative_to(PACKAGE_ROOT).parts[0] not in SKIPPED_FOLDERS
    }
    assert on_disk <= declared, f"missing from pyproject's packages: {sorted(on_disk - declared)}"
