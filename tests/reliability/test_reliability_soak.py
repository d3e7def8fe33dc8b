"""R6: soak. 32 clients send a mix of every RPC for 2 minutes (``THOUGHTBANK_SOAK_SECONDS``
sets another length, e.g. 600 for the 10-minute run): zero errors, and the server's resident
memory grows by less than 5% from the end of the warm-up to the end of the run (the median of
the last quarter of samples against the median of the first quarter).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from reliability_support import SERVING, ClosedLoopLoad, health_status

from thoughtbank.retriever import RetrievalQuery, ThoughtbankClient
from thoughtbank.retriever.serving.process import ServerProcess

pytestmark = pytest.mark.slow

CLIENTS = 32
SOAK_SECONDS = float(os.environ.get("THOUGHTBANK_SOAK_SECONDS", "120"))
WARM_UP_SECONDS = min(30.0, SOAK_SECONDS / 4)
SAMPLE_SECONDS = 2.0
MAX_RSS_GROWTH = 0.05
QUERIES = (
    "How many pears does Leo have left?",
    "Where do fish live?",
    "Write a Python function to reverse a list.",
    "What force accelerates 2 kg at 3 m/s^2?",
)


def mixed_request(client: ThoughtbankClient, n: int) -> Any:
    """Every RPC in turn, so no code path is left out of the soak."""
    query = QUERIES[n % len(QUERIES)]
    kind = n % 5
    if kind == 0:
        return client.retrieve(query, k=3)
    if kind == 1:
        return client.augment(query, k=2)
    if kind == 2:
        client.retrieve_batch([RetrievalQuery(q, k=2) for q in QUERIES])
        return None
    if kind == 3:
        hit = client.retrieve(query, k=1).hits[0]
        return client.get_template(hit.template.id)
    return client.index_info()


def rss_samples(pid: int, seconds: float) -> Iterator[int]:
    """The process's RSS every ``SAMPLE_SECONDS`` for ``seconds``."""
    process = psutil.Process(pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield process.memory_info().rss
        time.sleep(SAMPLE_SECONDS)
    yield process.memory_info().rss


def test_soak_has_no_errors_and_no_memory_growth(demo_index) -> None:
    with ServerProcess(demo_index) as server:
        load = ClosedLoopLoad(server.address, clients=CLIENTS, request=mixed_request).start()
        try:
            time.sleep(WARM_UP_SECONDS)
            samples = list(rss_samples(server.pid, SOAK_SECONDS - WARM_UP_SECONDS))
        finally:
            report = load.stop()
        assert health_status(server.address) == SERVING
    # Single samples swing by several percent with allocator timing; window medians do not.
    window = max(1, len(samples) // 4)
    start, end = statistics.median(samples[:window]), statistics.median(samples[-window:])
    growth = end / start - 1
    assert report.failed == 0, f"failed requests by code: {dict(report.failures)}"
    assert report.ok > CLIENTS * 10
    assert growth < MAX_RSS_GROWTH, (
        f"median RSS grew {growth:.1%} after warm-up ({int(start) >> 20} -> {int(end) >> 20} MiB, "
        f"peak {max(samples) >> 20} MiB)"
    )
