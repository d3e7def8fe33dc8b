"""The README's command blocks marked ``<!-- doctest -->`` run as written, in order, offline.

``<!-- doctest -->`` before a fenced ``bash`` block runs it with bash in one scratch folder shared
by all marked blocks (the checkout's ``demo/`` copied in); ``<!-- doctest: server INDEX -->``
runs it with ``thoughtbank serve`` on ``INDEX`` (built by an earlier block), its address in place
of the README's ``127.0.0.1:50051``. Each block must exit 0 without a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO_ROOT

README_ADDRESS = "127.0.0.1:50051"
MARKED_BLOCK = re.compile(r"<!-- doctest(?::\s*server\s+(\S+))?\s*-->\n```bash\n(.*?)```", re.S)
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class Block:
    line: int
    script: str
    server_index: str | None


def readme_blocks() -> list[Block]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return [
        Block(text.count("\n", 0, match.start()) + 1, match.group(2), match.group(1))
        for match in MARKED_BLOCK.finditer(text)
    ]


def readme_command_lines() -> list[str]:
    """Every ``thoughtbank ...`` line of every bash block, continuation lines joined."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in BASH_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("thoughtbank "):
                lines.append(line.split("#")[0])
    return lines


def command_parser(line: str) -> argparse.ArgumentParser:
    """The (sub)parser of the command ``line`` names: ``thoughtbank index build ...``."""
    from thoughtbank.cli import build_parser

    parser = build_parser()
    for word in line.split()[1:]:
        subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subcommands or word not in subcommands[0].choices:
            break
        parser = subcommands[0].choices[word]
    return parser


def run_block(script: str, folder: Path) -> subprocess.CompletedProcess[str]:
    # The thoughtbank command of the interpreter running the tests comes first on PATH.
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("THOUGHTBANK_SERVER", None)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_readme_marks_blocks_for_the_doc_test() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 2 and any(b.server_index for b in blocks)


def test_every_option_a_readme_command_shows_exists() -> None:
    lines = readme_command_lines()
    assert len(lines) > 20
    for line in lines:
        known = {flag for action in command_parser(line)._actions for flag in action.option_strings}
        unknown = set(FLAG.findall(line)) - known
        assert not unknown, f"README: {line.strip()!r} shows options its command lacks: {unknown}"


@pytest.mark.slow
def test_marked_readme_blocks_run_as_written(tmp_path: Path) -> None:
    from thoughtbank.retriever.serving.process import ServerProcess

    shutil.copytree(REPO_ROOT / "demo", tmp_path / "demo", ignore=shutil.ignore_patterns("*.py*"))
    for block in readme_blocks():
        script, server = block.script, None
        if block.server_index is not None:
            server = ServerProcess(tmp_path / block.server_index)
            script = script.replace(README_ADDRESS, server.address)
        try:
            done = run_block(script, tmp_path)
        finally:
            if server is not None:
                server.stop()
        where = f"README.md block at line {block.line}"
        assert done.returncode == 0, f"{where}:\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{where}:\n{done.stderr}"
