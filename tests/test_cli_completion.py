"""``thoughtbank completion bash|zsh``: the scripts name every command and subcommand, and the
bash one completes them when sourced in a real bash."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import pytest

from thoughtbank.cli import build_parser, main
from thoughtbank.completion import completion_script


def command_names(parser: argparse.ArgumentParser) -> set[str]:
    """Every subcommand name, nested ones (``index verify``) included."""
    names: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                names |= {name} | command_names(child)
    return names


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_script_names_every_command(shell: str) -> None:
    script = completion_script(shell)
    names = command_names(build_parser())
    assert {"query", "doctor", "completion", "verify"} <= names
    assert [name for name in sorted(names) if name not in script] == []


def test_the_command_prints_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out.startswith("#compdef thoughtbank")


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("thoughtbank ind", "index"),
        ("thoughtbank index ver", "verify"),
        ("thoughtbank doctor --tls", "--tls-ca"),
    ],
)
def test_bash_completes_commands_and_options(words: str, expected: str) -> None:
    completed = subprocess.run(
        [
            "bash",
            "-c",
            "source /dev/stdin; COMP_WORDS=($WORDS); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
            '_shtab_thoughtbank; echo "${COMPREPLY[@]}"',
        ],
        input=completion_script("bash"),
        env={"WORDS": words, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.split() == [expected]
