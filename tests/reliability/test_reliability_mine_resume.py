"""R3: `thoughtbank mine` killed with SIGKILL at 5 random points, then `--resume` to the end,
gives exactly the templates of an uninterrupted run: none lost, none duplicated.

The log is the real 7,914-row, 1,319-query GSM8K log, so mining runs for a few seconds (each
group is fsynced to the journal) and the kill points (seeded, spread over the run) fall while
reading, while distilling and near the end. A kill point is a number of finished groups in the
journal, watched from outside.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability_support import read_template_identity, run_cli, wait_for

pytestmark = pytest.mark.slow

LOG_FILE = "gsm8k_6_models.jsonl.gz"
KILLS = 5
SEED = 20260710
#: Merging near-duplicates loads the embedding model in every run; it is not what is tested.
MINE_OPTIONS = ("--workers", "2", "--no-merge")


def journal_lines(out: Path) -> int:
    """Groups finished so far, counted from the journal the mining job appends to."""
    journal = out.with_name(out.name + ".journal")
    return journal.read_bytes().count(b"\n") if journal.exists() else 0


@dataclass(frozen=True)
class KillPoint:
    """Kill once the journal holds ``groups`` lines and the process has run ``seconds``."""

    groups: int
    seconds: float = 0.0


def mine_until_killed(log: Path, out: Path, resume: bool, point: KillPoint) -> int:
    """Start `mine`, SIGKILL it at ``point``; return the journal lines it left.

    A run that finishes before the kill point is a test error: the points must be inside the run.
    """
    command = [
        sys.executable,
        "-m",
        "thoughtbank.cli",
        "mine",
        str(log),
        "--out",
        str(out),
        *MINE_OPTIONS,
        *(["--resume"] if resume else []),
    ]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def reached() -> bool:
        return process.poll() is not None or (
            journal_lines(out) >= point.groups and time.monotonic() - started >= point.seconds
        )

    try:
        wait_for(reached, timeout=300, what=f"kill point {point}", interval=0.005)
        assert process.poll() is None, f"mine finished before the kill point {point}"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    return journal_lines(out)


def kill_points(groups: int) -> list[KillPoint]:
    """One kill while the log is read (a seeded delay, before any group is done), then four at
    increasing journal sizes spread over the rest of the run."""
    rng = random.Random(SEED)
    spread = sorted(rng.sample(range(1, groups - groups // 10), KILLS - 1))
    return [KillPoint(0, rng.uniform(1.0, 2.0)), *(KillPoint(n) for n in spread)]


def test_killed_and_resumed_mining_equals_an_uninterrupted_run(
    shared_data: Path, tmp_path: Path
) -> None:
    log = shared_data / LOG_FILE
    reference = tmp_path / "reference" / "templates.jsonl"
    run = run_cli("mine", log, "--out", reference, *MINE_OPTIONS)
    assert run.returncode == 0, run.stderr
    expected = read_template_identity(reference)
    groups = journal_lines(reference)

    out = tmp_path / "interrupted" / "templates.jsonl"
    seen: list[int] = []
    for n, point in enumerate(kill_points(groups)):
        seen.append(mine_until_killed(log, out, resume=n > 0, point=point))
    assert seen == sorted(seen) and seen[-1] < groups, f"kill points {seen} of {groups} groups"

    finished = run_cli("mine", log, "--out", out, *MINE_OPTIONS, "--resume")
    assert finished.returncode == 0, finished.stderr
    resumed = read_template_identity(out)
    assert len(resumed) == len(set(resumed)), "a template was written twice"
    assert resumed == expected
