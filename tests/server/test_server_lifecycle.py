"""One server's life, in order: started before any index exists, loads the first version when
it appears, swaps versions under load, refuses a damaged one, reloads on SIGHUP, drains on
SIGTERM. The tests share that server and run in file order."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from server_testkit import (
    add_corrupted_version,
    health_status,
    retrieve_request,
    rpc_error,
    scrape_metrics,
    service_stub,
)

from thoughtbank.index import build_index
from thoughtbank.protos import pb2
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.templates import read_templates

POLL_S = 0.1
WAIT_S = 90.0


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lifecycle-index")


@pytest.fixture(scope="module")
def server(index_dir: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        index_dir,
        wait_for_index=False,
        extra_args=("--reload-interval", "0.2", "--metrics-port", "0", "--grace", "20"),
    )
    try:
        yield process
    finally:
        process.stop()


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(POLL_S)


def _live_version(server: ServerProcess) -> str:
    with grpc.insecure_channel(server.address) as channel:
        info = service_stub(channel).GetIndexInfo(pb2.GetIndexInfoRequest(), timeout=10)
    return info.index_version


def _reloads(server: ServerProcess, outcome: str) -> float:
    assert server.metrics_port is not None
    text = scrape_metrics(server.host, server.metrics_port)
    found = re.search(
        rf'thoughtbank_index_reloads_total{{namespace="default",outcome="{outcome}"}} (\S+)', text
    )
    return float(found.group(1)) if found else 0.0


def test_before_any_index_rpcs_are_unavailable_and_health_not_serving(server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        error = rpc_error(service_stub(channel).Retrieve, retrieve_request("hi"), timeout=10)
        assert health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "no index is loaded yet" in error.details()


def test_the_first_version_is_picked_up_when_it_appears(
    server, index_dir: Path, demo_templates: Path, embedder
) -> None:
    manifest = build_index(list(read_templates(demo_templates)), index_dir, embedder)
    with grpc.insecure_channel(server.address) as channel:
        _wait_until(
            lambda: health_status(channel) == health_pb2.HealthCheckResponse.SERVING, "SERVING"
        )
    assert _live_version(server) == manifest.version


def test_a_new_version_swaps_in_under_load_without_failed_requests(
    server, index_dir: Path, demo_templates: Path, embedder
) -> None:
    old = _live_version(server)
    seen: set[str] = set()
    failures: list[grpc.RpcError] = []
    stop = threading.Event()

    def load() -> None:
        with grpc.insecure_channel(server.address) as channel:
            stub = service_stub(channel)
            while not stop.is_set():
                try:
                    reply = stub.Retrieve(retrieve_request("How many pears are left?"), timeout=30)
                    seen.add(reply.index_version)
                except grpc.RpcError as exc:
                    failures.append(exc)

    with ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(load) for _ in range(4)]
        new = build_index(list(read_templates(demo_templates)), index_dir, embedder).version
        _wait_until(lambda: new in seen, "a response from the new version")
        stop.set()
        for client in clients:
            client.result()
    assert not failures, [f.details() for f in failures[:3]]
    assert old in seen and new in seen
    assert _live_version(server) == new


def test_a_damaged_version_is_refused_and_the_old_keeps_serving(server, index_dir: Path) -> None:
    live = _live_version(server)
    add_corrupted_version(index_dir, "99990101T000000000000Z-damaged")
    _wait_until(lambda: _reloads(server, "failed") >= 1, "the damaged version to be refused")
    with grpc.insecure_channel(server.address) as channel:
        reply = service_stub(channel).Retrieve(retrieve_request("Where do fish live?"), timeout=30)
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
    assert reply.index_version == live and reply.hits
    time.sleep(1.0)  # several watch intervals: the refused version is not retried by itself
    assert _reloads(server, "failed") == 1


def test_sighup_forces_a_reload_attempt(server) -> None:
    server.send_signal(signal.SIGHUP)
    _wait_until(lambda: _reloads(server, "failed") >= 2, "the reload SIGHUP asked for")


def test_sigterm_lets_in_flight_requests_finish_and_exits_zero(server) -> None:
    batch = pb2.RetrieveBatchRequest(
        requests=[retrieve_request(f"draining question {i}") for i in range(32)]
    )
    with grpc.insecure_channel(server.address) as channel:
        stub = service_stub(channel)
        calls = [stub.RetrieveBatch.future(batch, timeout=60) for _ in range(6)]
        time.sleep(0.3)  # let the calls reach the server before it is told to stop
        server.send_signal(signal.SIGTERM)
        replies = [call.result() for call in calls]
    assert all(len(reply.responses) == 32 for reply in replies)
    assert server.wait(timeout=60) == 0
