"""Helpers shared by the benchmark modules (and the fault suite's load): timing, percentiles,
the machine description every report starts with, and a closed-loop gRPC load generator.

The load generator lives here rather than in each benchmark because serving, hot-swap and soak
figures must come from the same client behaviour to be comparable.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from thoughtbank.retriever import ThoughtbankClient, ThoughtbankError

#: Where the report, its plots and the browser's screenshots are written.
REPORT_DIR = Path(__file__).resolve().parent / "report"

#: Queries spread over the demo tasks, so load exercises more than one cached tokenization.
LOAD_QUERIES = (
    "Leo buys 5 crates of pears with 18 pears in each crate and gives away 7. How many are left?",
    "What is the acceleration of a 3 kg mass pushed by a 12 N force?",
    "Where would you store ice cream to keep it frozen?",
    "Write a Python function to count the words in a sentence.",
    "A train travels 120 km in 1.5 hours. What is its average speed?",
    "Which gas do plants absorb from the air during photosynthesis?",
)


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of durations given in seconds, in milliseconds (NaN when empty)."""
    if not seconds:
        return float("nan")
    return float(np.percentile(np.asarray(seconds), q) * 1000.0)


def ratio(value: float, reference: float) -> float:
    """``value / reference``, NaN when the reference is missing or zero (never a crash)."""
    if not reference or reference != reference:
        return float("nan")
    return value / reference


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_info() -> dict[str, str]:
    """What a reader needs to judge the figures: cores, CPU model, memory, Python."""
    import psutil

    return {
        "cores": str(usable_cores()),
        "cpu_model": cpu_model(),
        "memory_gib": f"{psutil.virtual_memory().total / 2**30:.1f}",
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call of ``fn``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


RequestFn = Callable[[ThoughtbankClient, int], Any]


def retrieve_request(client: ThoughtbankClient, n: int) -> Any:
    """The default load: Retrieve k=3 over ``LOAD_QUERIES`` in turn."""
    return client.retrieve(LOAD_QUERIES[n % len(LOAD_QUERIES)], k=3)


@dataclass
class LoadReport:
    """Outcome of a load run: successes, failures by status code, latencies, versions seen."""

    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    first_seen: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


class ClosedLoopLoad:
    """``clients`` threads, each with its own channel, sending the next request as soon as the
    last one returned, until ``stop()``. Every outcome is recorded, none raised, so callers can
    assert "zero failed requests" over a whole run (hot swaps, soak, shutdown).

    ``first_seen`` maps each index version that answered to the ``time.monotonic()`` of its first
    answer, which is how hot-swap time is measured from the client side.
    """

    def __init__(
        self,
        address: str,
        clients: int = 32,
        request: RequestFn = retrieve_request,
        timeout: float = 30.0,
    ) -> None:
        self.address = address
        self.request = request
        self.timeout = timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.report = LoadReport()
        self._threads = [
            threading.Thread(target=self._client_loop, args=(i,), daemon=True)
            for i in range(clients)
        ]

    def _record(self, seconds: float, result: Any, failure: str | None) -> None:
        with self._lock:
            if failure is not None:
                self.report.failures[failure] += 1
                return
            self.report.ok += 1
            self.report.latencies.append(seconds)
            version = getattr(result, "index_version", "")
            if version and version not in self.report.first_seen:
                self.report.first_seen[version] = time.monotonic()

    def _client_loop(self, offset: int) -> None:
        # No client-side retries: a request the server failed must count as failed.
        with ThoughtbankClient(self.address, timeout=self.timeout, retry=None) as client:
            n = offset
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    result, failure = self.request(client, n), None
                except ThoughtbankError as exc:
                    result, failure = None, exc.code.name
                except Exception as exc:  # recorded, never lost: the caller asserts on it
                    result, failure = None, type(exc).__name__
                self._record(time.perf_counter() - start, result, failure)
                n += len(self._threads)

    def start(self) -> ClosedLoopLoad:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> LoadReport:
        """Stop sending, wait for every in-flight request to return, and report."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return self.report

    def snapshot(self) -> tuple[int, int]:
        """(ok, failed) so far, while the load runs."""
        with self._lock:
            return self.report.ok, self.report.failed


def run_cli(
    doc: str,
    run: Callable[[bool], dict[str, float]],
    report: Callable[[dict[str, float]], None],
    argv: Sequence[str] | None = None,
) -> int:
    """``python -m benchmarks.bench_<area> [--quick]`` for an area whose quick run is 10k
    templates: run it and print its report."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k templates instead of 100k")
    report(run(parser.parse_args(argv).quick))
    return 0
