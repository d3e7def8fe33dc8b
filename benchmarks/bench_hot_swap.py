"""Hot-swap benchmark: how long a served index of 100k templates takes to be replaced by a new
version, and how many requests fail meanwhile, under 32 concurrent clients.

A second version is written into the served INDEX_DIR with ``build_index`` (which switches
CURRENT atomically) and the server is sent SIGHUP, the documented way to reload at once. The
swap time is measured from the clients' side: from the moment CURRENT names the new version to
the first response that carries it. Its reference is a cold start: how long the same server
takes from launch to serving that index, which a restart-based deploy would cost instead.

The index is the serving benchmark's synthetic one (real model, vectors clustered around real
questions), 10k templates with ``--quick``.

Usage: ``python -m benchmarks.bench_hot_swap [--quick]``
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_serving import build_synthetic_index
from benchmarks.common import ClosedLoopLoad, percentile_ms, ratio, run_cli, timed
from thoughtbank.index import Embedder, TorchEmbedder, current_version
from thoughtbank.retriever.serving.process import ServerProcess

CLIENTS = 32
WARM_SECONDS = 3.0
SWAP_TIMEOUT = 600.0
SERVER_ARGS = ("--log-level", "WARNING")


def wait_for_version(load: ClosedLoopLoad, version: str, timeout: float) -> float:
    """``time.monotonic()`` of the first response carrying ``version`` (NaN on timeout)."""
    deadline = time.monotonic() + timeout
    while version not in load.report.first_seen:
        if time.monotonic() > deadline:
            return float("nan")
        time.sleep(0.01)
    return load.report.first_seen[version]


def swap_under_load(index_dir: Path, size: int, embedder: Embedder) -> dict[str, float]:
    """Serve ``index_dir``, write a new version under load, and time the swap."""
    cold_start, server = timed(lambda: ServerProcess(index_dir, extra_args=SERVER_ARGS))
    with server:
        load = ClosedLoopLoad(server.address, clients=CLIENTS).start()
        try:
            time.sleep(WARM_SECONDS)
            build_seconds, _ = timed(lambda: build_synthetic_index(size, index_dir, embedder))
            switched = time.monotonic()
            server.send_signal(signal.SIGHUP)
            new_version = current_version(index_dir)
            seen = wait_for_version(load, new_version, SWAP_TIMEOUT)
            time.sleep(WARM_SECONDS)
        finally:
            report = load.stop()
    swap = seen - switched
    return {
        "templates": float(size),
        "hot_swap_seconds": swap,
        "cold_start_seconds": cold_start,
        "swap_vs_cold_start": ratio(swap, cold_start),
        "version_build_seconds": build_seconds,
        "failed_requests_during_swap": float(report.failed),
        "requests_during_run": float(report.ok + report.failed),
        "p99_ms_during_run": percentile_ms(report.latencies, 99),
    }


def run(quick: bool) -> dict[str, float]:
    size = 10_000 if quick else 100_000
    embedder = TorchEmbedder()
    with tempfile.TemporaryDirectory(prefix="bench-hot-swap-") as folder:
        index_dir = Path(folder) / "index"
        build_synthetic_index(size, index_dir, embedder)
        return swap_under_load(index_dir, size, embedder)


def report(figures: dict[str, float]) -> None:
    print(f"hot swap of a {figures['templates']:.0f}-template index under {CLIENTS} clients")
    print(
        f"  swap {figures['hot_swap_seconds']:.2f} s vs cold start "
        f"{figures['cold_start_seconds']:.2f} s: {figures['swap_vs_cold_start']:.2f}x"
    )
    print(
        f"  failed requests {figures['failed_requests_during_swap']:.0f} of "
        f"{figures['requests_during_run']:.0f} (goal 0); p99 during the run "
        f"{figures['p99_ms_during_run']:.0f} ms"
    )


if __name__ == "__main__":
    sys.exit(run_cli(__doc__, run, report))
