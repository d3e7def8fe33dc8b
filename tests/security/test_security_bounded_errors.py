"""Error messages echo bounded input: a 16 KB id gets NOT_FOUND with a short message, not
RESOURCE_EXHAUSTED from a status too large for the client's metadata limit."""

from __future__ import annotations

import grpc
import pytest

from thoughtbank.echo import MAX_ECHO_CHARS, MAX_MESSAGE_CHARS
from thoughtbank.protos import pb2, pb2_grpc

HUGE = "x" * 16_384


@pytest.fixture(scope="module")
def stub(demo_server):
    with grpc.insecure_channel(demo_server.address) as channel:
        yield pb2_grpc.ThoughtTemplateServiceStub(channel)


def _error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=30)
    return raised.value


def test_a_huge_template_id_is_not_found_with_a_short_message(stub) -> None:
    error = _error(stub.GetTemplate, pb2.GetTemplateRequest(id=HUGE))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "(16384 characters)" in error.details()
    assert len(error.details()) < MAX_ECHO_CHARS + 100


def test_a_huge_strict_task_is_invalid_with_a_short_message(stub) -> None:
    request = pb2.RetrieveRequest(query="Where do fish live?", k=1, task=HUGE, task_strict=True)
    error = _error(stub.Retrieve, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("unknown task 'xxx") and len(error.details()) < 1_000


def test_every_status_message_is_bounded(stub) -> None:
    """One bad request per batch entry: the batch answers with the first, within the bound."""
    bad = pb2.RetrieveRequest(query="q", k=1, task=HUGE * 4, task_strict=True)
    error = _error(stub.RetrieveBatch, pb2.RetrieveBatchRequest(requests=[bad] * 3))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("request 0: unknown task")
    assert len(error.details()) <= MAX_MESSAGE_CHARS + 40
