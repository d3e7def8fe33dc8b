"""RecordOutcome and RecordOutcomes on a real server: stored once, durably, or refused."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from server_testkit import copy_index, rpc_error, scrape_metrics, service_stub

from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.protos import pb2
from thoughtbank.retriever import (
    AsyncThoughtbankClient,
    InvalidRequestError,
    OutcomeRecord,
    ThoughtbankClient,
)
from thoughtbank.retriever.langchain import ThoughtTemplateRetriever
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.templates import read_templates


@pytest.fixture(scope="module")
def index_dir(demo_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_index(demo_index, tmp_path_factory.mktemp("outcomes") / "index")


@pytest.fixture(scope="module")
def server(index_dir: Path) -> Iterator[ServerProcess]:
    with ServerProcess(index_dir) as process:
        yield process


@pytest.fixture(scope="module")
def template_ids(demo_templates: Path) -> list[str]:
    return [t.id for t in read_templates(demo_templates)][:3]


def _outcome(outcome_id: str, template_ids: list[str], **fields) -> pb2.RecordOutcomeRequest:
    return pb2.RecordOutcomeRequest(
        outcome_id=outcome_id, template_ids=template_ids, score=fields.pop("score", 0.75), **fields
    )


def test_an_outcome_is_stored_once_and_a_retry_says_so(
    server: ServerProcess, index_dir: Path, template_ids: list[str]
) -> None:
    request = _outcome("once", template_ids, query="q", baseline_score=0.5, model="m")
    with grpc.insecure_channel(server.address) as channel:
        stub = service_stub(channel)
        assert stub.RecordOutcome(request, timeout=30).recorded is True
        assert stub.RecordOutcome(request, timeout=30).recorded is False
    with OutcomeStore(index_dir) as store:
        (stats,) = store.template_outcomes([template_ids[0]])
    assert (stats.uses, stats.mean_score, stats.mean_lift_vs_baseline) == (1, 0.75, 0.25)


def test_a_batch_answers_per_outcome_in_order(
    server: ServerProcess, index_dir: Path, template_ids: list[str]
) -> None:
    outcomes = [_outcome(f"batch-{n}", template_ids[:1], score=n / 10) for n in range(5)]
    with grpc.insecure_channel(server.address) as channel:
        stub = service_stub(channel)
        stub.RecordOutcome(outcomes[2], timeout=30)
        reply = stub.RecordOutcomes(pb2.RecordOutcomesRequest(outcomes=outcomes), timeout=30)
    assert [r.recorded for r in reply.results] == [True, True, False, True, True]
    with OutcomeStore(index_dir) as store:
        assert {f"batch-{n}" for n in range(5)} <= store.outcome_ids()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"outcome_id": ""}, "outcome_id is required"),
        ({"template_ids": []}, "template_ids is empty"),
        ({"template_ids": ["no-such-template"]}, "no-such-template"),
        ({"score": math.nan}, "score must be a number in [0, 1]"),
        ({"score": 2.0}, "score must be a number in [0, 1]"),
        ({"score": None}, "score is required"),
        ({"baseline_score": -1.0}, "baseline_score must be"),
    ],
)
def test_a_bad_outcome_is_invalid_argument_naming_the_field(
    server: ServerProcess, index_dir: Path, template_ids: list[str], fields: dict, message: str
) -> None:
    request = pb2.RecordOutcomeRequest(outcome_id="bad", template_ids=template_ids, score=0.5)
    for name, value in fields.items():
        if value is None:
            request.ClearField(name)
        elif isinstance(value, list):
            del getattr(request, name)[:]
            getattr(request, name).extend(value)
        else:
            setattr(request, name, value)
    with grpc.insecure_channel(server.address) as channel:
        stub = service_stub(channel)
        error = rpc_error(stub.RecordOutcome, request, timeout=30)
        batch = pb2.RecordOutcomesRequest(outcomes=[_outcome("fine", template_ids), request])
        batch_error = rpc_error(stub.RecordOutcomes, batch, timeout=30)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.details()
    assert batch_error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert batch_error.details().startswith("outcomes[1].")
    with OutcomeStore(index_dir) as store:
        assert not {"bad", "fine"} & store.outcome_ids()


def test_the_sync_async_and_local_clients_record_outcomes(
    server: ServerProcess, index_dir: Path, template_ids: list[str]
) -> None:
    """Each client records once, says False on a retry, and refuses a bad outcome with
    InvalidRequestError; the local client writes the same store as the server."""
    remote = OutcomeRecord("sdk-sync", tuple(template_ids), 0.9, task="gsm8k")
    with ThoughtbankClient(server.address) as client:
        assert client.record_outcome(remote) is True
        assert client.record_outcomes(
            [remote, dataclasses.replace(remote, outcome_id="sdk-2")]
        ) == [
            False,
            True,
        ]
        with pytest.raises(InvalidRequestError, match="score must be"):
            client.record_outcome(dataclasses.replace(remote, outcome_id="x", score=3.0))

    async def record_async() -> bool:
        async with AsyncThoughtbankClient(server.address) as client:
            return await client.record_outcome(dataclasses.replace(remote, outcome_id="sdk-async"))

    assert asyncio.run(record_async()) is True
    with ThoughtbankClient.local(index_dir) as local:
        assert local.record_outcome(dataclasses.replace(remote, outcome_id="sdk-local")) is True
        assert local.record_outcome(remote) is False  # recorded through the server
        with pytest.raises(InvalidRequestError, match="not in any index version"):
            local.record_outcome(dataclasses.replace(remote, template_ids=("nope",)))
    with OutcomeStore(index_dir) as store:
        assert {"sdk-sync", "sdk-2", "sdk-async", "sdk-local"} <= store.outcome_ids()


def test_a_running_server_stops_serving_a_template_outcomes_show_harmful(
    demo_index: Path, tmp_path: Path
) -> None:
    """Outcomes recorded over RPC reach ranking within --feedback-interval, with no restart
    and no new index version: a template with credible harm is no longer served."""
    index_dir = copy_index(demo_index, tmp_path / "index")
    args = ("--feedback-interval", "0.2", "--metrics-port", "0")
    query = "Leo buys 5 crates of pears with 18 pears in each crate. How many pears?"
    with (
        ServerProcess(index_dir, extra_args=args) as server,
        ThoughtbankClient(server.address) as client,
    ):
        before = client.retrieve(query, k=5)
        harmful = before.hits[0].template
        client.record_outcomes(
            [OutcomeRecord(f"h{n}", (harmful.id,), 0.0, baseline_score=1.0) for n in range(40)]
        )
        deadline = time.monotonic() + 30
        while harmful.id in [h.template.id for h in client.retrieve(query, k=5).hits]:
            assert time.monotonic() < deadline, "the harmful template is still served"
            time.sleep(0.1)
        after = client.retrieve(query, k=5)
        assert server.metrics_port is not None
        metrics = scrape_metrics(server.host, server.metrics_port)
    assert after.index_version == before.index_version
    assert 'thoughtbank_retired_templates{namespace="default"} 1.0' in metrics
    assert 'thoughtbank_outcomes_total{namespace="default",result="new"} 40.0' in metrics


def test_the_langchain_retriever_reports_an_outcome_from_its_documents(
    server: ServerProcess, index_dir: Path
) -> None:
    """The app passes the Documents it put in the prompt; the ids come from their metadata."""
    retriever = ThoughtTemplateRetriever(address=server.address, k=2)
    documents = retriever.invoke("How many pears are in 5 crates of 18?")
    assert retriever.record_outcome(documents, "lc-sync", 1.0, model="m") is True
    assert asyncio.run(retriever.arecord_outcome(documents, "lc-async", 0.0)) is True
    assert retriever.record_outcome(documents, "lc-sync", 1.0) is False
    retriever.close()
    with OutcomeStore(index_dir) as store:
        uses = {(u.template_id, u.score) for u in store.template_uses()}
    assert {(d.metadata["id"], 1.0) for d in documents} <= uses
    assert {(d.metadata["id"], 0.0) for d in documents} <= uses
