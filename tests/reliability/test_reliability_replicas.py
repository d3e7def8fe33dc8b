"""Three replicas behind one client: gRPC's round_robin with client-side health checking and the
retry policy lose no request while one replica is killed with -9 and another drains on SIGTERM,
and with all three up each serves a fair share."""

from __future__ import annotations

import re
import shutil
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.serving.process import ServerProcess

pytestmark = pytest.mark.slow

CLIENT_THREADS = 32
KILL_AT, RESTART_KILLED_AT, DRAIN_AT = 20.0, 40.0, 28.0
#: Shares are counted over this long once all three are up again: restarts on a loaded
#: machine can take well past RESTART_KILLED_AT, so a fixed end time could leave no window.
FAIR_WINDOW_S = 20.0
FAIR_SHARE = 0.2
OK_RETRIEVES = re.compile(
    r'thoughtbank_requests_total\{code="OK",namespace="default",rpc="Retrieve"\} (\S+)'
)


def _replica(root: Path, port: int = 0, metrics_port: int = 0) -> ServerProcess:
    return ServerProcess(
        None,
        index_root=root,
        port=port,
        extra_args=["--metrics-port", str(metrics_port), "--grace", "5"],
    )


def _served(replica: ServerProcess) -> float:
    url = f"http://{replica.host}:{replica.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        found = OK_RETRIEVES.search(response.read().decode())
    return float(found.group(1)) if found else 0.0


def test_replicas_lose_no_request_when_one_dies_and_one_drains(
    demo_index: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(demo_index, root / "default")
    replicas = [_replica(root) for _ in range(3)]
    ports = [(r.port, r.metrics_port or 0) for r in replicas]
    addresses = ",".join(f"127.0.0.1:{port}" for port, _ in ports)
    stop = threading.Event()
    failures: list[str] = []
    calls = [0] * CLIENT_THREADS

    def hammer(n: int, client: ThoughtbankClient) -> None:
        while not stop.is_set():
            try:
                client.retrieve("How many apples are left?", timeout=30)
                calls[n] += 1
            except Exception as exc:  # every failure is the test's business
                failures.append(repr(exc))

    client = ThoughtbankClient(addresses)
    threads = [threading.Thread(target=hammer, args=(n, client)) for n in range(CLIENT_THREADS)]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        _sleep_until(started, KILL_AT)
        replicas[0].send_signal(signal.SIGKILL)
        replicas[0].wait(30)
        _sleep_until(started, DRAIN_AT)
        replicas[1].send_signal(signal.SIGTERM)
        assert replicas[1].wait(60) == 0
        replicas[1] = _replica(root, *ports[1])
        _sleep_until(started, RESTART_KILLED_AT)
        replicas[0] = _replica(root, *ports[0])
        window_start = [_served(r) for r in replicas]
        time.sleep(FAIR_WINDOW_S)
        window = [_served(r) - before for r, before in zip(replicas, window_start, strict=True)]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        client.close()
        for replica in replicas:
            replica.stop()
    assert failures == []
    assert all(calls), "every client thread made calls"
    total = sum(window)
    assert total > 0
    assert all(share / total >= FAIR_SHARE for share in window), window


def _sleep_until(started: float, at: float) -> None:
    time.sleep(max(0.0, started + at - time.monotonic()))
