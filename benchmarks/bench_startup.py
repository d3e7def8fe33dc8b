"""Start-up benchmark: how long a command-line call takes, beside ``python -c "import grpc"``.

Measured in one run, side by side, as the median wall time of fresh interpreters:
``thoughtbank --version``, ``thoughtbank query --server ...`` against a running server on the
demo index (the whole call: start-up, one Retrieve, printing) and the bare gRPC import that any
client pays. The server's share of the query, a Retrieve from a client already connected, is
given beside it, since on a loaded machine it can outweigh the start-up. The goal is each
command within 4x the gRPC import: commands that talk to a server import no engine (torch,
FAISS, sentence-transformers).

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

from benchmarks.common import ratio, timed
from thoughtbank.demo import demo_logs_path
from thoughtbank.index import TorchEmbedder, build_index
from thoughtbank.retriever.client import ThoughtbankClient
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.templates import ExtractiveDistiller, mine_templates, read_templates

RUNS = 9
QUICK_RUNS = 3
QUERY = "How many oranges are left after giving some away?"


def wall_seconds(command: Sequence[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def interleaved_medians(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median wall time of each command in fresh processes, run in turns so that the machine's
    drift lands on every command alike (after one untimed round that warms the page cache)."""
    for command in commands.values():
        wall_seconds(command)
    durations: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            durations[name].append(wall_seconds(command))
    return {name: statistics.median(taken) for name, taken in durations.items()}


def warm_retrieve_seconds(address: str, runs: int) -> float:
    """The server's share of a query: median Retrieve from a client already connected."""
    with ThoughtbankClient(address) as client:
        client.retrieve(QUERY)
        return statistics.median(timed(lambda: client.retrieve(QUERY))[0] for _ in range(runs))


def demo_index(root: Path) -> Path:
    templates = root / "templates.jsonl"
    mine_templates([demo_logs_path()], templates, ExtractiveDistiller())
    build_index(list(read_templates(templates)), root / "index", TorchEmbedder())
    return root / "index"


def run(quick: bool) -> dict[str, float]:
    runs = QUICK_RUNS if quick else RUNS
    cli = [sys.executable, "-m", "thoughtbank.cli"]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        with ServerProcess(demo_index(Path(tmp)), extra_args=("--log-level", "WARNING")) as server:
            medians = interleaved_medians(
                {
                    "grpc_import": [sys.executable, "-c", "import grpc"],
                    "version": [*cli, "--version"],
                    "query": [*cli, "query", "--server", server.address, QUERY],
                },
                runs,
            )
            retrieve = warm_retrieve_seconds(server.address, runs)
    grpc_import = medians["grpc_import"]
    return {
        "grpc_import_seconds": grpc_import,
        "version_seconds": medians["version"],
        "query_seconds": medians["query"],
        "warm_retrieve_seconds": retrieve,
        "version_vs_grpc_import": ratio(medians["version"], grpc_import),
        "query_vs_grpc_import": ratio(medians["query"], grpc_import),
        "query_less_retrieve_vs_grpc_import": ratio(medians["query"] - retrieve, grpc_import),
    }


def report(figures: dict[str, float]) -> None:
    print(
        f"python -c 'import grpc': {figures['grpc_import_seconds']:.3f} s\n"
        f"thoughtbank --version:   {figures['version_seconds']:.3f} s "
        f"({figures['version_vs_grpc_import']:.2f}x; goal <= 4x)\n"
        f"thoughtbank query:       {figures['query_seconds']:.3f} s "
        f"({figures['query_vs_grpc_import']:.2f}x; goal <= 4x)\n"
        f"  the server's Retrieve (warm client): {figures['warm_retrieve_seconds']:.3f} s; "
        f"the rest {figures['query_less_retrieve_vs_grpc_import']:.2f}x the gRPC import"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs, not {RUNS}")
    report(run(parser.parse_args(argv).quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
