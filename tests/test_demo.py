"""`thoughtbank demo` (what `make demo` runs) completes the whole pipeline on a fresh cache."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "THOUGHTBANK_CACHE": str(tmp_path / "cache")}
    run = subprocess.run(
        [sys.executable, "-m", "thoughtbank.cli", "demo", "--workdir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    out = run.stdout
    assert re.search(r"== mined \d+ templates from 96 log rows \(32 queries\)", out)
    assert "== server listening on 127.0.0.1:" in out
    first_hits = out.split("== query: ", 2)[1]
    assert "[gsm8k]" in first_hits.splitlines()[1]
    assert "Question: Sam buys 6 bags of oranges" in out
    assert out.rstrip().endswith("== server stopped")
    assert (tmp_path / "work" / "index" / "CURRENT").exists()
