"""With `serve --auth-token-file`, every service RPC without the right bearer token is
UNAUTHENTICATED; the right token gets through. Checked with raw stubs, so the metadata sent is
exactly what the test says (duplicate headers included)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from thoughtbank.protos import pb2, pb2_grpc
from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.errors import AuthenticationError
from thoughtbank.retriever.serving.process import ServerProcess

TOKEN = "s3cret-token-for-tests"
CALLS = {
    "Retrieve": pb2.RetrieveRequest(query="Where do fish live?", k=1),
    "RetrieveBatch": pb2.RetrieveBatchRequest(
        requests=[pb2.RetrieveRequest(query="What is 7 times 8?", k=1)]
    ),
    "AugmentPrompt": pb2.AugmentPromptRequest(query="Where do fish live?", k=1),
    "GetTemplate": pb2.GetTemplateRequest(id="does-not-exist"),
    "GetIndexInfo": pb2.GetIndexInfoRequest(),
}
BAD_CREDENTIALS = {
    "none": (),
    "wrong token": (("authorization", "Bearer wrong-token"),),
    "token without Bearer": (("authorization", TOKEN),),
    "empty bearer": (("authorization", "Bearer "),),
    "token as a prefix": (("authorization", f"Bearer {TOKEN}x"),),
    "other header": (("x-api-key", TOKEN),),
    # Two headers must not let the last (or the first) one win.
    "wrong then right": (("authorization", "Bearer wrong"), ("authorization", f"Bearer {TOKEN}")),
    "right then wrong": (("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer wrong")),
    "right twice": (("authorization", f"Bearer {TOKEN}"),) * 2,
}


@pytest.fixture(scope="module")
def auth_server(
    demo_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    token_file = tmp_path_factory.mktemp("auth") / "token"
    token_file.write_text(TOKEN + "\n")
    with ServerProcess(demo_index, extra_args=("--auth-token-file", str(token_file))) as server:
        yield server


def call(address: str, method: str, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    with grpc.insecure_channel(address) as channel:
        stub = pb2_grpc.ThoughtTemplateServiceStub(channel)
        try:
            getattr(stub, method)(CALLS[method], metadata=metadata, timeout=30)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("credentials", sorted(BAD_CREDENTIALS))
@pytest.mark.parametrize("method", sorted(CALLS))
def test_rpc_without_the_right_token_is_unauthenticated(
    auth_server, method: str, credentials: str
) -> None:
    code = call(auth_server.address, method, BAD_CREDENTIALS[credentials])
    assert code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", sorted(CALLS))
def test_rpc_with_the_right_token_is_served(auth_server, method: str) -> None:
    expected = grpc.StatusCode.NOT_FOUND if method == "GetTemplate" else grpc.StatusCode.OK
    assert call(auth_server.address, method, (("authorization", f"Bearer {TOKEN}"),)) == expected


def test_sdk_sends_its_token_and_reports_a_missing_one(auth_server) -> None:
    with ThoughtbankClient(auth_server.address, token=TOKEN) as client:
        assert client.retrieve("Where do fish live?", k=1).hits
    with ThoughtbankClient(auth_server.address) as client, pytest.raises(AuthenticationError):
        client.retrieve("Where do fish live?", k=1)
