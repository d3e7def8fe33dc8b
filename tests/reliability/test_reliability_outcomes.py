"""R11: outcomes under faults. kill -9 of a server under 32 clients recording outcomes loses no
acknowledged outcome and stores none twice; 1,000 fuzzed RecordOutcome(s) requests get only OK
or INVALID_ARGUMENT and leave the server healthy."""

from __future__ import annotations

import math
import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import SERVING, health_status, wait_for

from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.protos import SERVICE_NAME, pb2, pb2_grpc
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.templates import read_templates

pytestmark = pytest.mark.slow

CLIENTS = 32
MIN_REQUESTS = 1_000
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}


@pytest.fixture
def index_dir(demo_index: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(demo_index, tmp_path / "index"))


@pytest.fixture(scope="module")
def real_ids(demo_templates: Path) -> list[str]:
    return [t.id for t in read_templates(demo_templates)]


def _record_until_stopped(
    address: str, client: int, ids: list[str], acknowledged: list[str], stop: threading.Event
) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = pb2_grpc.ThoughtTemplateServiceStub(channel)
        for n in range(1_000_000):
            if stop.is_set():
                return
            outcome_id = f"c{client}-{n}"
            request = pb2.RecordOutcomeRequest(
                outcome_id=outcome_id, template_ids=ids[n % 3 : n % 3 + 2], score=0.5
            )
            try:
                stub.RecordOutcome(request, timeout=30)
            except grpc.RpcError:
                return  # the server is gone: what it acknowledged is in ``acknowledged``
            acknowledged.append(outcome_id)


def test_kill_9_under_outcome_load_loses_no_acknowledged_outcome(
    index_dir: Path, real_ids: list[str]
) -> None:
    server = ServerProcess(index_dir)
    acknowledged: list[str] = []
    stop = threading.Event()
    clients = [
        threading.Thread(
            target=_record_until_stopped, args=(server.address, n, real_ids, acknowledged, stop)
        )
        for n in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    wait_for(lambda: len(acknowledged) >= 500, 120, "500 acknowledged outcomes")
    server.send_signal(signal.SIGKILL)
    assert server.wait(timeout=30) == -signal.SIGKILL
    stop.set()
    for client in clients:
        client.join(timeout=60)
    with OutcomeStore(index_dir) as store:
        stored = store.outcome_ids()
        uses = store.template_uses()
    assert set(acknowledged) <= stored
    assert len(uses) == 2 * len(stored)  # each stored once, with its two templates
    with ServerProcess(index_dir) as again, grpc.insecure_channel(again.address) as channel:
        retry = pb2.RecordOutcomeRequest(
            outcome_id=acknowledged[0], template_ids=real_ids[:1], score=0.5
        )
        assert pb2_grpc.ThoughtTemplateServiceStub(channel).RecordOutcome(retry).recorded is False


SCORES = st.one_of(
    st.none(),
    st.floats(0, 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, -0.0, 1.0000001, -1.0]),
)


def _outcomes(ids: list[str]) -> st.SearchStrategy[pb2.RecordOutcomeRequest]:
    one = st.one_of(st.sampled_from(ids), st.sampled_from(ids), st.text(max_size=20))
    template_ids = st.one_of(st.lists(one, max_size=4), st.lists(one, min_size=101, max_size=110))
    return st.builds(
        lambda oid, tids, score, base, text: pb2.RecordOutcomeRequest(
            outcome_id=oid,
            template_ids=tids,
            score=score,
            baseline_score=base,
            query=text,
            task=text[:10],
            model=text[:5],
        ),
        st.one_of(st.just(""), st.text(max_size=40)),
        template_ids,
        SCORES,
        SCORES,
        st.one_of(st.text(max_size=50), st.just("q" * 40_000)),
    )


def test_fuzzed_outcomes_get_only_ok_or_invalid_argument(
    index_dir: Path, real_ids: list[str]
) -> None:
    codes: Counter[str] = Counter()
    unexpected: list[str] = []
    with ServerProcess(index_dir) as server, grpc.insecure_channel(server.address) as channel:
        record_one = channel.unary_unary(f"/{SERVICE_NAME}/RecordOutcome")
        record_many = channel.unary_unary(f"/{SERVICE_NAME}/RecordOutcomes")
        calls = st.one_of(
            _outcomes(real_ids).map(lambda r: (record_one, r.SerializeToString())),
            st.lists(_outcomes(real_ids), max_size=4).map(
                lambda rs: (record_many, pb2.RecordOutcomesRequest(outcomes=rs).SerializeToString())
            ),
            st.binary(max_size=200).map(lambda b: (record_one, b)),
        )

        @settings(
            max_examples=MIN_REQUESTS + 100,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(calls)
        def send(call: tuple[grpc.UnaryUnaryMultiCallable, bytes]) -> None:
            invoke, body = call
            try:
                invoke(body, timeout=60)
                code, details = grpc.StatusCode.OK, ""
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details() or ""
            codes[code.name] += 1
            if code not in ALLOWED:
                unexpected.append(f"{code.name}: {details[:80]}")

        send()
        time.sleep(0.1)
        assert health_status(server.address) == SERVING
    assert sum(codes.values()) >= MIN_REQUESTS
    assert not unexpected, f"{len(unexpected)} unexpected of {codes}: {Counter(unexpected)}"
    assert codes["OK"] and codes["INVALID_ARGUMENT"]
