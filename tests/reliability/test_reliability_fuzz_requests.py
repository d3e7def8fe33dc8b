"""R2: at least 1,000 hypothesis-generated requests against a real `thoughtbank serve` subprocess.

Requests are sent as raw bytes on a generic channel, so the generator can also send what no
typed client would: invalid UTF-8 in string fields, random bytes, absurd numbers. Whatever
arrives, the server answers OK, INVALID_ARGUMENT or NOT_FOUND, never crashes, and reports
SERVING afterwards.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import SERVING, health_status

from thoughtbank.protos import SERVICE_NAME, pb2
from thoughtbank.retriever.serving.process import ServerProcess

pytestmark = pytest.mark.slow

MIN_REQUESTS = 1_000
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
UINT32 = st.integers(0, 2**32 - 1)
K = st.one_of(st.integers(1, 10), st.integers(0, 120), UINT32)
ABSURD_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 1e30]),
)
# Sensible values as often as absurd ones, so that the OK paths are fuzzed too.
DIVERSITY = st.one_of(st.just(0.0), st.floats(0, 1), ABSURD_FLOATS)
MIN_SCORE = st.one_of(st.none(), st.floats(-1, 1, width=32), ABSURD_FLOATS)
TASKS = st.one_of(
    st.sampled_from(["", "gsm8k", "mbpp", "no-such-task", "GSM8K", "gsm8k "]), st.text(max_size=40)
)
SHORT_QUERIES = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["What is 12 * 7?", "Where do fish live?", " ", "\x00", "🙂" * 50]),
)
#: Up to 300k characters (1.2 MB of UTF-8), well past the server's query limit but under gRPC's
#: 4 MB message limit, whose RESOURCE_EXHAUSTED is the transport's answer, not the service's.
HUGE_QUERIES = st.builds(
    lambda part, times: (part * times)[:300_000],
    st.text(min_size=1, max_size=8),
    st.integers(1_000, 150_000),
)
QUERIES = st.one_of(SHORT_QUERIES, HUGE_QUERIES)
NAMESPACES = st.one_of(
    st.sampled_from(["", "default", "no-such-namespace", "../default", "Default", "a" * 300]),
    st.text(max_size=40),
)


def field_bytes(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2), written by hand to carry any bytes."""

    def varint(value: int) -> bytes:
        out = bytearray()
        while True:
            low, value = value & 0x7F, value >> 7
            out.append(low | (0x80 if value else 0))
            if not value:
                return bytes(out)

    return varint(number << 3 | 2) + varint(len(payload)) + payload


def retrieve_requests(
    queries: st.SearchStrategy[str] = QUERIES,
) -> st.SearchStrategy[pb2.RetrieveRequest]:
    return st.builds(
        lambda query, k, task, strict, min_score, diversity, exclude, same, ef, nprobe, ns: (
            pb2.RetrieveRequest(
                query=query,
                k=k,
                task=task,
                task_strict=strict,
                min_score=min_score,
                diversity=diversity,
                exclude_ids=exclude,
                exclude_same_query=same,
                ef_search=ef,
                nprobe=nprobe,
                namespace=ns,
            )
        ),
        queries,
        K,
        TASKS,
        st.booleans(),
        MIN_SCORE,
        DIVERSITY,
        st.lists(st.text(max_size=30), max_size=5),
        st.booleans(),
        st.one_of(st.none(), UINT32),
        st.one_of(st.none(), UINT32),
        NAMESPACES,
    )


def augment_requests() -> st.SearchStrategy[pb2.AugmentPromptRequest]:
    return st.builds(
        lambda query, k, task, strict, diversity, budget, ns: pb2.AugmentPromptRequest(
            query=query,
            k=k,
            task=task,
            task_strict=strict,
            diversity=diversity,
            max_template_tokens=budget,
            namespace=ns,
        ),
        QUERIES,
        K,
        TASKS,
        st.booleans(),
        DIVERSITY,
        st.one_of(st.none(), UINT32),
        NAMESPACES,
    )


def invalid_utf8_strings() -> st.SearchStrategy[bytes]:
    """Byte strings that are not UTF-8, as a string field's payload."""
    return (
        st.binary(min_size=1, max_size=64)
        .map(lambda b: b + b"\xff\xc3(")
        .filter(lambda b: not _is_utf8(b))
    )


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def wire_calls() -> st.SearchStrategy[tuple[str, bytes]]:
    """(method, serialized request) of every kind the fuzzer sends."""
    typed = st.one_of(
        retrieve_requests().map(lambda r: ("Retrieve", r.SerializeToString())),
        augment_requests().map(lambda r: ("AugmentPrompt", r.SerializeToString())),
        st.lists(retrieve_requests(SHORT_QUERIES), max_size=6).map(
            lambda rs: ("RetrieveBatch", pb2.RetrieveBatchRequest(requests=rs).SerializeToString())
        ),
        st.builds(
            lambda i, ns: (
                "GetTemplate",
                pb2.GetTemplateRequest(id=i, namespace=ns).SerializeToString(),
            ),
            st.text(max_size=80),
            NAMESPACES,
        ),
        NAMESPACES.map(
            lambda ns: ("GetIndexInfo", pb2.GetIndexInfoRequest(namespace=ns).SerializeToString())
        ),
    )
    raw = st.one_of(
        st.tuples(
            st.sampled_from(["Retrieve", "AugmentPrompt", "GetTemplate", "GetIndexInfo"]),
            invalid_utf8_strings().map(lambda b: field_bytes(1, b)),
        ),
        st.tuples(
            st.sampled_from(
                [
                    "Retrieve",
                    "AugmentPrompt",
                    "RetrieveBatch",
                    "GetTemplate",
                    "GetIndexInfo",
                    "ListNamespaces",
                ]
            ),
            st.binary(max_size=256),
        ),
    )
    return st.one_of(typed, typed, raw)


@pytest.fixture(scope="module")
def server(demo_index) -> Iterator[ServerProcess]:
    with ServerProcess(demo_index) as process:
        yield process


def test_fuzzed_requests_get_only_ok_invalid_argument_or_not_found(server: ServerProcess) -> None:
    codes: Counter[str] = Counter()
    unexpected: list[tuple[str, bytes, str, str]] = []
    with grpc.insecure_channel(server.address) as channel:

        @settings(
            max_examples=MIN_REQUESTS + 100,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(wire_calls())
        def send(call: tuple[str, bytes]) -> None:
            method, body = call
            invoke = channel.unary_unary(f"/{SERVICE_NAME}/{method}")
            try:
                invoke(body, timeout=60)
                code, details = grpc.StatusCode.OK, ""
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details() or ""
            codes[code.name] += 1
            if code not in ALLOWED:
                unexpected.append((method, body[:80], code.name, details))

        send()
    assert sum(codes.values()) >= MIN_REQUESTS
    assert health_status(server.address) == SERVING
    assert health_status(server.address, SERVICE_NAME) == SERVING
    kinds = Counter(f"{method} {code}: {details[:70]}" for method, _, code, details in unexpected)
    assert not unexpected, f"{len(unexpected)} unexpected answers of {codes}: {dict(kinds)}"
    assert codes["OK"] and codes["INVALID_ARGUMENT"]
