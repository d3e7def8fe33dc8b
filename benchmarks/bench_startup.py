"""Start-up benchmark: how long a command-line call takes, beside ``python -c "import grpc"``.

Measured in one run, side by side, as the median wall time of fresh interpreters:
``thoughtbank --version``, ``thoughtbank query --server ...`` against a running server on the
demo index (the whole call: start-up, one Retrieve, printing) and the bare gRPC import that any
client pays. The goal is each command within 4x the gRPC import: commands that talk to a server
import no engine (torch, FAISS, sentence-transformers).

Usage: ``python -m benchmarks.bench_startup [--quick]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import ratio
from thoughtbank.demo import demo_logs_path
from thoughtbank.index import Embedder, build_index
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.templates import ExtractiveDistiller, mine_templates, read_templates

RUNS = 9
QUICK_RUNS = 3
QUERY = "How many oranges are left after giving some away?"


def median_seconds(command: Sequence[str], runs: int) -> float:
    """Median wall time of ``command`` in a fresh process (after one untimed warm-up run, so
    every command reads its files from the page cache)."""
    durations = []
    for attempt in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        if attempt:
            durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def demo_index(root: Path) -> Path:
    templates = root / "templates.jsonl"
    mine_templates([demo_logs_path()], templates, ExtractiveDistiller())
    build_index(list(read_templates(templates)), root / "index", Embedder())
    return root / "index"


def run(quick: bool) -> dict[str, float]:
    runs = QUICK_RUNS if quick else RUNS
    cli = [sys.executable, "-m", "thoughtbank.cli"]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        with ServerProcess(demo_index(Path(tmp)), extra_args=("--log-level", "WARNING")) as server:
            query = median_seconds([*cli, "query", "--server", server.address, QUERY], runs)
    grpc_import = median_seconds([sys.executable, "-c", "import grpc"], runs)
    version = median_seconds([*cli, "--version"], runs)
    return {
        "grpc_import_seconds": grpc_import,
        "version_seconds": version,
        "query_seconds": query,
        "version_vs_grpc_import": ratio(version, grpc_import),
        "query_vs_grpc_import": ratio(query, grpc_import),
    }


def report(figures: dict[str, float]) -> None:
    print(
        f"python -c 'import grpc': {figures['grpc_import_seconds']:.3f} s\n"
        f"thoughtbank --version:   {figures['version_seconds']:.3f} s "
        f"({figures['version_vs_grpc_import']:.2f}x; goal <= 4x)\n"
        f"thoughtbank query:       {figures['query_seconds']:.3f} s "
        f"({figures['query_vs_grpc_import']:.2f}x; goal <= 4x)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs, not {RUNS}")
    report(run(parser.parse_args(argv).quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
