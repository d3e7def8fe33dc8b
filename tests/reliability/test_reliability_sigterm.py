"""R5: SIGTERM under load. Health turns NOT_SERVING, requests in flight at the signal finish
with OK, requests sent after it are refused (never cut off half-way), and the process exits 0.
Refused means UNAVAILABLE, or CANCELLED for a call that reached the server as it stopped and was
never handed to a handler: grpc core's status for those (grpc/grpc#41785).

"In flight" is made certain by large RetrieveBatch calls that take seconds on this machine: the
signal is sent once the server's metrics count them all as admitted, and they are checked to be
unfinished then (a call still on its way at the signal would rightly be refused). Health is
watched over a stream opened before the signal, since a draining server refuses new calls,
health checks included.
"""

from __future__ import annotations

import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from reliability_support import NOT_SERVING, SERVING, ClosedLoopLoad, metric_value, wait_for

from thoughtbank.retriever import RetrievalQuery, RetrievalResult, ThoughtbankClient
from thoughtbank.retriever.serving.process import ServerProcess

pytestmark = pytest.mark.slow

CLIENTS = 32
SLOW_CALLS = 4
QUERIES_PER_SLOW_CALL = 1_000  # the server's RetrieveBatch limit: seconds of work even when quiet
GRACE_SECONDS = 60
REFUSED = {"UNAVAILABLE", "CANCELLED"}


class HealthWatch:
    """Statuses pushed by the server's health ``Watch`` stream, collected in a thread."""

    def __init__(self, address: str) -> None:
        self._channel = grpc.insecure_channel(address)
        self._stream = health_pb2_grpc.HealthStub(self._channel).Watch(
            health_pb2.HealthCheckRequest(service="")
        )
        self.statuses: list[int] = []
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        try:
            for reply in self._stream:
                self.statuses.append(reply.status)
        except grpc.RpcError:
            pass  # the stream ends when the server goes away or the watch is cancelled

    def close(self) -> None:
        """Cancel the stream: an open watch would otherwise hold the drain for the whole grace."""
        self._stream.cancel()
        self._thread.join(10)
        self._channel.close()


def slow_batch(address: str, offset: int) -> list[RetrievalResult]:
    queries = [
        RetrievalQuery(f"How many apples are left after giving away {offset * 1000 + i}?", k=3)
        for i in range(QUERIES_PER_SLOW_CALL)
    ]
    with ThoughtbankClient(address, timeout=GRACE_SECONDS) as client:
        return client.retrieve_batch(queries)


def slow_calls_admitted(server: ServerProcess) -> float:
    assert server.metrics_port is not None
    series = 'thoughtbank_requests_in_flight{rpc="RetrieveBatch"}'
    return metric_value(server.host, server.metrics_port, series)


def test_sigterm_under_load_drains_and_exits_zero(demo_index) -> None:
    flags = ("--grace", str(GRACE_SECONDS), "--metrics-port", "0")
    server = ServerProcess(demo_index, extra_args=flags)
    watch = HealthWatch(server.address)
    load = ClosedLoopLoad(server.address, clients=CLIENTS).start()
    pool = ThreadPoolExecutor(SLOW_CALLS)
    try:
        wait_for(
            lambda: SERVING in watch.statuses and load.snapshot()[0] > CLIENTS,
            60,
            "health SERVING and load running",
        )
        slow: list[Future[list[RetrievalResult]]] = [
            pool.submit(slow_batch, server.address, i) for i in range(SLOW_CALLS)
        ]
        wait_for(
            lambda: slow_calls_admitted(server) == SLOW_CALLS, 60, "the slow calls to be admitted"
        )
        assert not any(f.done() for f in slow), "the slow calls must be in flight at SIGTERM"
        server.send_signal(signal.SIGTERM)

        wait_for(lambda: NOT_SERVING in watch.statuses, 30, "health NOT_SERVING")
        watch.close()
        results = [f.result(timeout=GRACE_SECONDS) for f in slow]
        exit_code = server.wait(GRACE_SECONDS + 30)
    finally:
        report = load.stop()
        pool.shutdown()
        server.stop()
    assert watch.statuses.index(NOT_SERVING) > watch.statuses.index(SERVING)
    assert [len(r) for r in results] == [QUERIES_PER_SLOW_CALL] * SLOW_CALLS
    assert all(r.hits for batch in results for r in batch)
    assert set(report.failures) <= REFUSED, dict(report.failures)
    assert report.ok > CLIENTS
    assert exit_code == 0
