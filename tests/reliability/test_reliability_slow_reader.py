"""R8: a client that never reads. One raw HTTP/2 connection with a zero flow-control window sends
60 RetrieveBatch calls: the server cannot send any answer, so every answer it builds stays in its
memory. Before the outbound budget the handlers returned, the in-flight gauge read 0 and RSS grew
by the size of every answer. Now the calls beyond the connection's budget are refused up front
with RESOURCE_EXHAUSTED naming the limit (trailers-only answers pass a zero window), the gauges
count the held calls until the connection goes, and other clients are served meanwhile.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from reliability_support import metrics_text, wait_for

from thoughtbank.protos import pb2
from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.serving.process import ServerProcess

pytestmark = pytest.mark.slow

CALLS = 60
QUERIES_PER_CALL = 200
K = 20
BUDGET = 20_000_000  # bytes one connection may leave unread: a few of these answers
METHOD = "/thoughtbank.v1.ThoughtTemplateService/RetrieveBatch"
RESOURCE_EXHAUSTED = "8"


class ZeroWindowClient:
    """gRPC calls over a raw HTTP/2 connection that never lets the server send any DATA."""

    def __init__(self, host: str, port: int) -> None:
        self._socket = socket.create_connection((host, port))
        self._authority = f"{host}:{port}"
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self._h2 = h2.connection.H2Connection(config)
        self._h2.initiate_connection()
        self._h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        self._socket.sendall(self._h2.data_to_send())
        #: grpc-status (and grpc-message) per stream that got its status.
        self.statuses: dict[int, tuple[str, str]] = {}

    def call(self, method: str, message: bytes) -> None:
        stream = self._h2.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", method),
            (":authority", self._authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        frame = b"\x00" + struct.pack(">I", len(message)) + message
        self._h2.send_headers(stream, headers)
        while self._h2.local_flow_control_window(stream) < len(frame):
            self.read_statuses(1.0)  # the server's WINDOW_UPDATE: it does read our requests
        self._h2.send_data(stream, frame, end_stream=True)
        self._socket.sendall(self._h2.data_to_send())

    def read_statuses(self, seconds: float) -> None:
        """Read frames (without ever opening the window) for about ``seconds``."""
        self._socket.settimeout(seconds)
        try:
            data = self._socket.recv(1 << 20)
        except TimeoutError:
            return
        for event in self._h2.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                headers = dict(event.headers)
                if "grpc-status" in headers:
                    self.statuses[event.stream_id] = (
                        headers["grpc-status"],
                        headers.get("grpc-message", ""),
                    )
        self._socket.sendall(self._h2.data_to_send())

    def refused(self) -> int:
        return sum(status == RESOURCE_EXHAUSTED for status, _ in self.statuses.values())

    def close(self) -> None:
        self._socket.close()


def in_flight(server: ServerProcess) -> float:
    return gauges(server)["thoughtbank_requests_in_flight"]


def gauges(server: ServerProcess) -> dict[str, float]:
    """The two gauges, each summed over its labels (in-flight calls are counted per RPC)."""
    assert server.metrics_port is not None
    text = metrics_text(server.host, server.metrics_port)
    totals = dict.fromkeys(
        ("thoughtbank_requests_in_flight", "thoughtbank_unsent_response_bytes"), 0.0
    )
    for series, _, value in (line.partition(" ") for line in text.splitlines()):
        name = series.partition("{")[0]
        if name in totals:
            totals[name] += float(value)
    return totals


@pytest.fixture
def budgeted_server(demo_index: Path) -> Iterator[ServerProcess]:
    flags = ("--metrics-port", "0", "--max-unsent-bytes-per-connection", str(BUDGET))
    with ServerProcess(demo_index, extra_args=flags) as server:
        yield server


def test_a_client_that_never_reads_holds_at_most_its_budget(budgeted_server) -> None:
    batch = pb2.RetrieveBatchRequest(
        requests=[
            pb2.RetrieveRequest(query=f"Where do fish number {i} live?", k=K)
            for i in range(QUERIES_PER_CALL)
        ]
    ).SerializeToString()
    reader = ZeroWindowClient(budgeted_server.host, budgeted_server.port)
    try:
        for _ in range(CALLS):
            reader.call(METHOD, batch)

        def all_answered_or_held() -> bool:
            reader.read_statuses(0.5)
            return reader.refused() + in_flight(budgeted_server) == CALLS

        wait_for(all_answered_or_held, 120, "every call to be refused or held")
        assert 0 < in_flight(budgeted_server) < CALLS // 2
        assert len(reader.statuses) == reader.refused()
        assert all("max_unsent_bytes_per_connection" in m for _, m in reader.statuses.values())
        # The held answers stay counted, within the budget plus one answer.
        assert 0 < gauges(budgeted_server)["thoughtbank_unsent_response_bytes"] < 2 * BUDGET
        with ThoughtbankClient(budgeted_server.address, timeout=60) as other:
            assert other.retrieve("Where do fish live?", k=1).hits
    finally:
        reader.close()
    wait_for(
        lambda: (
            gauges(budgeted_server)
            == {
                "thoughtbank_requests_in_flight": 0.0,
                "thoughtbank_unsent_response_bytes": 0.0,
            }
        ),
        60,
        "the closed connection's calls to be released",
    )
