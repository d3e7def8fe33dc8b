"""The command line starts fast: ``--version``, ``--help`` and the commands that talk to a server
import none of the engine (nor langchain-core or tqdm, which alone take half a second), and the
top-level help lists each command with the help its module registers."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from thoughtbank.cli import build_parser

# Modules whose import costs the command line its start-up time.
SLOW_MODULES = (
    "torch",
    "sentence_transformers",
    "faiss",
    "sklearn",
    "numpy",
    "pyarrow",
    "langchain_core",
    "tqdm",
)
RUN_AND_LIST_MODULES = """
import sys
from thoughtbank.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
slow = ",".join(m for m in {slow!r} if m in sys.modules)
print(f"exit={{code}} slow=[{{slow}}]", file=sys.stderr)
"""


def loaded_slow_modules(*argv: str) -> str:
    """Run ``thoughtbank ARGV`` in a fresh interpreter; its exit code and the slow modules."""
    finished = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES.format(slow=SLOW_MODULES), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return finished.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["query", "--help"]])
def test_version_and_help_load_no_slow_module(argv: list[str]) -> None:
    assert loaded_slow_modules(*argv) == "exit=0 slow=[]"


@pytest.mark.parametrize("command", ["query", "augment"])
def test_server_commands_load_no_slow_module(command: str, demo_server) -> None:
    outcome = loaded_slow_modules(command, "--server", demo_server.address, "What is 12 * 7?")
    assert outcome == "exit=0 slow=[]"


def command_helps(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in commands._choices_actions}


def test_the_listed_help_is_what_each_module_registers() -> None:
    assert command_helps(build_parser(["--version"])) == command_helps(build_parser())


def test_a_chosen_command_gets_its_full_parser() -> None:
    args = build_parser(["query", "x"]).parse_args(["query", "x", "--k", "2"])
    assert (args.text, args.k) == ("x", 2)


def test_the_sdk_loads_its_prompt_names_on_first_use() -> None:
    import thoughtbank.retriever as sdk
    from thoughtbank.retriever import prompt

    assert sdk.build_augmented_prompt is prompt.build_augmented_prompt
    assert sdk.DEFAULT_PROMPT is prompt.DEFAULT_PROMPT
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = sdk.missing  # type: ignore[attr-defined]
