"""Answers over ``--max-response-bytes`` are refused before any work, and counted as refused
(issue 20: a RetrieveBatch within the documented limits used to compute for seconds, then fail
to be sent with RESOURCE_EXHAUSTED, counted as OK)."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from server_testkit import scrape_metrics

from thoughtbank.protos import pb2, pb2_grpc
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.retriever.serving.process import ServerProcess

REFUSALS = (
    'thoughtbank_requests_total{code="INVALID_ARGUMENT",namespace="default",rpc="RetrieveBatch"}'
)
PEARS = "Leo buys 5 crates of pears with 18 pears in each crate. How many pears does he have?"


@pytest.fixture(scope="module")
def engine(demo_index: Path, embedder) -> RetrievalEngine:
    return RetrievalEngine.open(demo_index, embedder)


def _sample(metrics: str, name: str) -> float:
    """The value of the sample ``name`` (with its labels) in a Prometheus text page, else 0."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def _metrics_counting(server: ServerProcess, sample: str) -> str:
    """The metrics page once it has ``sample``: an aborted RPC is counted just after its status
    is sent, so the client can see the status first."""
    assert server.metrics_port is not None
    for _ in range(100):
        page = scrape_metrics(server.host, server.metrics_port)
        if _sample(page, sample):
            return page
        time.sleep(0.05)
    raise AssertionError(f"{sample} never appeared in the metrics")


@pytest.mark.slow
def test_an_answer_over_the_size_limit_is_refused_before_any_work(
    demo_index: Path, engine: RetrievalEngine
) -> None:
    """The server may send what 10 requests of k=3 can take: 11 are refused, computing nothing
    and counted as refused (a failed send used to be counted as OK)."""
    limit = engine.response_bound.answers_bytes([3] * 10)
    fits = pb2.RetrieveBatchRequest(requests=[pb2.RetrieveRequest(query=PEARS, k=3)] * 10)
    too_big = pb2.RetrieveBatchRequest(requests=[pb2.RetrieveRequest(query=PEARS, k=3)] * 11)
    extra_args = ("--max-response-bytes", str(limit), "--metrics-port", "0")
    with ServerProcess(demo_index, extra_args=extra_args) as server:
        assert server.metrics_port is not None
        with grpc.insecure_channel(server.address) as channel:
            stub = pb2_grpc.ThoughtTemplateServiceStub(channel)
            assert len(stub.RetrieveBatch(fits, timeout=30).responses) == 10
            before = scrape_metrics(server.host, server.metrics_port)
            with pytest.raises(grpc.RpcError) as refused:
                stub.RetrieveBatch(too_big, timeout=30)
        after = _metrics_counting(server, REFUSALS)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"over the limit of {limit} (max_response_bytes)" in refused.value.details()
    computed = "thoughtbank_batch_size_sum"
    assert _sample(after, computed) == _sample(before, computed) == 10
    assert _sample(after, REFUSALS) == 1
    assert (
        _sample(
            after, 'thoughtbank_requests_total{code="OK",namespace="default",rpc="RetrieveBatch"}'
        )
        == 1
    )
