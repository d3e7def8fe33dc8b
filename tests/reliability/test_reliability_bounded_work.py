"""Bounded work per request (issue 20): one check per finding, each failing before the fix.

Work is observed through deterministic counts (how many neighbours FAISS is asked for, how many
candidates MMR compares, which items a micro-batch holds), never through wall time.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import grpc
import pytest

from thoughtbank.protos import pb2, pb2_grpc
from thoughtbank.retriever import (
    MessageTooLargeError,
    ServerOverloadedError,
    ThoughtbankClient,
)
from thoughtbank.retriever.errors import error_from_rpc
from thoughtbank.retriever.serving.conversions import result_to_pb
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.retriever.serving.micro_batcher import MicroBatcher
from thoughtbank.retriever.types import MAX_EXCLUDE_IDS, RetrievalQuery

PEARS = "Leo buys 5 crates of pears with 18 pears in each crate. How many pears does he have?"
MADE_UP_IDS = tuple(f"made-up-{i}" for i in range(13_000))


@pytest.fixture(scope="module")
def engine(demo_index: Path, embedder) -> RetrievalEngine:
    return RetrievalEngine.open(demo_index, embedder)


@pytest.fixture
def work(engine: RetrievalEngine, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Records the neighbours asked of FAISS per call and the candidates MMR compares."""
    seen: dict[str, list[int]] = {"fetched": [], "compared": []}
    search, embeddings_of = engine.index.search, engine.index.embeddings_of

    def counting_search(vectors, k, *args, **kwargs):
        seen["fetched"].append(k)
        return search(vectors, k, *args, **kwargs)

    def counting_embeddings_of(int_ids):
        seen["compared"].append(len(int_ids))
        return embeddings_of(int_ids)

    monkeypatch.setattr(engine.index, "search", counting_search)
    monkeypatch.setattr(engine.index, "embeddings_of", counting_embeddings_of)
    return seen


def test_made_up_exclude_ids_add_no_work(
    engine: RetrievalEngine, work: dict[str, list[int]]
) -> None:
    """Made-up ids used to be added to the fetch and the MMR pool (4k + their count)."""
    request = RetrievalQuery(PEARS, k=3, diversity=0.5, exclude_ids=MADE_UP_IDS[:MAX_EXCLUDE_IDS])
    plain = RetrievalQuery(PEARS, k=3, diversity=0.5)
    assert engine.retrieve(request) == engine.retrieve(plain)
    mmr_pool = 20  # max(4 k, 20)
    assert max(work["fetched"]) <= max(mmr_pool, 32)  # 32: a routed request's first look
    assert max(work["compared"]) <= mmr_pool


def test_real_exclusions_are_filtered_not_added_to_the_mmr_pool(
    engine: RetrievalEngine, work: dict[str, list[int]]
) -> None:
    nearest = [hit.template.id for hit in engine.retrieve(RetrievalQuery(PEARS, k=10)).hits]
    result = engine.retrieve(RetrievalQuery(PEARS, k=3, diversity=0.5, exclude_ids=nearest))
    assert not {hit.template.id for hit in result.hits} & set(nearest)
    assert max(work["compared"]) <= 20


def test_exclude_ids_and_ef_search_over_their_limits_are_refused(demo_server) -> None:
    with grpc.insecure_channel(demo_server.address) as channel:
        stub = pb2_grpc.ThoughtTemplateServiceStub(channel)
        with pytest.raises(grpc.RpcError) as excluded:
            stub.Retrieve(
                pb2.RetrieveRequest(query=PEARS, k=100, diversity=0.5, exclude_ids=MADE_UP_IDS),
                timeout=30,
            )
        with pytest.raises(grpc.RpcError) as ef:
            stub.Retrieve(pb2.RetrieveRequest(query=PEARS, k=3, ef_search=2**32 - 1), timeout=30)
    assert excluded.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"13000 ids, over the limit of {MAX_EXCLUDE_IDS}" in excluded.value.details()
    assert ef.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "over the limit of 4096" in ef.value.details()


@pytest.mark.parametrize("k", [1, 3, 32, 100])
def test_the_answer_size_bound_holds(engine: RetrievalEngine, k: int) -> None:
    """The up-front refusal is only sound if no admitted answer can be larger than its bound."""
    queries = [RetrievalQuery(PEARS, k=k), RetrievalQuery("Where do fish live?", k=k)]
    answers = pb2.RetrieveBatchResponse(
        responses=[result_to_pb(r) for r in engine.retrieve_batch(queries)]
    )
    assert answers.ByteSize() <= engine.response_bound.answers_bytes(q.k for q in queries)


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_size_refusals_are_not_overload() -> None:
    """gRPC reports messages over a size limit as RESOURCE_EXHAUSTED, like an overloaded server:
    only the overload is worth a retry."""
    exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED
    received = "Stream removed (CLIENT: Received message larger than max (5000 vs. 1000))"
    sent = "SERVER: Sent message larger than max (5000 vs. 1000)"
    overloaded = "server is at its limit of 256 concurrent requests; retry with backoff"
    for details in (received, sent):
        error = error_from_rpc(_RpcError(exhausted, details))
        assert isinstance(error, MessageTooLargeError)
        assert not isinstance(error, ServerOverloadedError)
    assert isinstance(error_from_rpc(_RpcError(exhausted, overloaded)), ServerOverloadedError)


def test_the_sdk_takes_answers_over_grpcs_default_size_and_names_its_own_limit(
    demo_server,
) -> None:
    """gRPC clients accept 4 MiB by default, far less than the server sends."""
    queries = [PEARS] * 120  # 120 x 32 hits of about 1.3 kB: more than 4 MiB
    with ThoughtbankClient(demo_server.address) as client:
        assert len(client.retrieve_batch(queries, k=100)) == 120
    small = (("grpc.max_receive_message_length", 10_000),)
    with ThoughtbankClient(demo_server.address, channel_options=small, retry=None) as client:
        with pytest.raises(MessageTooLargeError, match="larger than max"):
            client.retrieve_batch(queries[:10], k=100)


class BlockingRecorder:
    """A micro-batcher ``process`` that records each batch and holds its thread until
    ``release`` is set, so a test can queue callers while a batch computes."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.computing = threading.Event()
        self.release = threading.Event()

    def process(self, items, cores):
        self.batches.append(list(items))
        self.computing.set()
        self.release.wait(10)
        return list(items)


def test_a_single_request_waits_behind_one_item_of_each_batch_not_the_whole_batch() -> None:
    """Two callers' batches of 10 and then a single request: once the batch computing ends, the
    next micro-batch holds one item of each caller, the single request's included."""
    recorder = BlockingRecorder()
    batches, computing, release, record = (
        recorder.batches,
        recorder.computing,
        recorder.release,
        recorder.process,
    )

    async def scenario() -> None:
        batcher = MicroBatcher(record, max_batch_size=4, max_wait_s=0.0, workers=1)
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher.submit("first"))
            await asyncio.to_thread(computing.wait, 10)  # the only thread is now busy
            callers = [
                asyncio.ensure_future(batcher.submit_all([f"a{i}" for i in range(10)])),
                asyncio.ensure_future(batcher.submit_all([f"b{i}" for i in range(10)])),
                asyncio.ensure_future(batcher.submit("single")),
            ]
            await asyncio.sleep(0)  # each caller runs once, in order, and queues its items
            release.set()
            assert await first == "first"
            a, b, single = await asyncio.gather(*callers)
            assert (a[-1], b[-1], single) == ("a9", "b9", "single")
        finally:
            await batcher.close()

    asyncio.run(scenario())
    assert batches[:3] == [
        ["first"],
        ["a0", "b0", "single", "a1"],
        ["b1", "a2", "b2", "a3"],
    ]
    assert sorted(item for batch in batches for item in batch) == sorted(
        ["first", "single", *(f"a{i}" for i in range(10)), *(f"b{i}" for i in range(10))]
    )


def test_a_new_caller_goes_before_the_batches_already_in_turn() -> None:
    """Three batches have been served once each; a single request arriving then is in the next
    micro-batch, ahead of the lanes in turn (the end of the turn would be two batches later)."""
    recorder = BlockingRecorder()
    batches, computing, release, record = (
        recorder.batches,
        recorder.computing,
        recorder.release,
        recorder.process,
    )

    async def scenario() -> None:
        batcher = MicroBatcher(record, max_batch_size=2, max_wait_s=0.0, workers=1)
        batcher.start()
        try:
            callers = [
                asyncio.ensure_future(batcher.submit_all([f"{c}{i}" for i in range(4)]))
                for c in "abc"
            ]
            await asyncio.to_thread(computing.wait, 10)  # ["a0", "b0"] computes
            single = asyncio.ensure_future(batcher.submit("single"))
            await asyncio.sleep(0)
            release.set()
            assert await single == "single"
            await asyncio.gather(*callers)
        finally:
            await batcher.close()

    asyncio.run(scenario())
    assert batches[:3] == [["a0", "b0"], ["c0", "single"], ["a1", "b1"]]
