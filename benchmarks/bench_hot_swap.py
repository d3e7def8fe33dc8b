"""Hot-swap benchmark: how long a served index of 100k templates takes to be replaced by a new
version, and how many requests fail meanwhile, under 32 concurrent clients.

Two versions are written in turn into the served INDEX_DIR with ``build_index`` (which switches
CURRENT atomically), each followed by SIGHUP, the documented way to reload at once: first the
same templates plus 1% new ones, as a day's ``index add`` makes (the server reuses the work
done on templates it already holds), then one whose every template is new. Each swap time is
measured from the clients' side: from the moment CURRENT names the new version to the first
response that carries it. Its reference is a cold start: how long the same server takes from
launch to serving the first index, which a restart-based deploy would cost instead.

The index is the serving benchmark's synthetic one (real model, vectors clustered around real
questions), 10k templates with ``--quick``.

Usage: ``python -m benchmarks.bench_hot_swap [--quick]``
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_serving import build_synthetic_index
from benchmarks.common import ClosedLoopLoad, percentile_ms, ratio, run_cli, timed
from thoughtbank.index import Embedder, current_version, load_embedder
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


def swap_to(
    server: ServerProcess, load: ClosedLoopLoad, index_dir: Path, build: Callable[[], None]
) -> float:
    """Seconds from CURRENT naming the version ``build`` writes to its first answer."""
    build()
    switched = time.monotonic()
    server.send_signal(signal.SIGHUP)
    seen = wait_for_version(load, current_version(index_dir), SWAP_TIMEOUT)
    time.sleep(WARM_SECONDS)
    return seen - switched


def swap_under_load(index_dir: Path, size: int, embedder: Embedder) -> dict[str, float]:
    """Serve ``index_dir``, write two new versions under load, and time both swaps."""
    cold_start, server = timed(lambda: ServerProcess(index_dir, extra_args=SERVER_ARGS))
    added = size + size // 100
    with server:
        load = ClosedLoopLoad(server.address, clients=CLIENTS).start()
        try:
            time.sleep(WARM_SECONDS)
            swap = swap_to(
                server, load, index_dir, lambda: build_synthetic_index(added, index_dir, embedder)
            )
            swap_all_new = swap_to(
                server, load, index_dir, lambda: build_synthetic_index(size, index_dir, embedder, 1)
            )
        finally:
            report = load.stop()
    return {
        "templates": float(size),
        "hot_swap_seconds": swap,
        "hot_swap_seconds_all_new": swap_all_new,
        "cold_start_seconds": cold_start,
        "swap_vs_cold_start": ratio(swap, cold_start),
        "failed_requests_during_swap": float(report.failed),
        "requests_during_run": float(report.ok + report.failed),
        "p99_ms_during_run": percentile_ms(report.latencies, 99),
    }


def run(quick: bool) -> dict[str, float]:
    size = 10_000 if quick else 100_000
    embedder = load_embedder()
    with tempfile.TemporaryDirectory(prefix="bench-hot-swap-") as folder:
        index_dir = Path(folder) / "index"
        build_synthetic_index(size, index_dir, embedder)
        return swap_under_load(index_dir, size, embedder)


def report(figures: dict[str, float]) -> None:
    print(f"hot swap of a {figures['templates']:.0f}-template index under {CLIENTS} clients")
    print(
        f"  swap to 1% new templates {figures['hot_swap_seconds']:.2f} s (goal <= 2) vs cold "
        f"start {figures['cold_start_seconds']:.2f} s: {figures['swap_vs_cold_start']:.2f}x"
    )
    print(f"  swap to all new templates {figures['hot_swap_seconds_all_new']:.2f} s")
    print(
        f"  failed requests {figures['failed_requests_during_swap']:.0f} of "
        f"{figures['requests_during_run']:.0f} (goal 0); p99 during the run "
        f"{figures['p99_ms_during_run']:.0f} ms"
    )


if __name__ == "__main__":
    sys.exit(run_cli(__doc__, run, report))
