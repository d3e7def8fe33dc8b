"""Retries, waiting for a late server, bearer-token auth and TLS, on real gRPC servers."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from thoughtbank.protos import pb2, pb2_grpc
from thoughtbank.retriever import (
    AsyncThoughtbankClient,
    AuthenticationError,
    DeadlineExceededError,
    IndexUnavailableError,
    InvalidRequestError,
    RetrievalResult,
    RetryPolicy,
    ThoughtbankClient,
)
from thoughtbank.retriever.serving.process import ServerProcess

TOKEN = "s3cret-token"
QUICK_RETRY = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.05)


class FailingFirst(pb2_grpc.ThoughtTemplateServiceServicer):
    """GetIndexInfo fails ``failures`` times with ``code``, then answers."""

    def __init__(self, failures: int, code: grpc.StatusCode) -> None:
        self.failures = failures
        self.code = code
        self.calls = 0

    def GetIndexInfo(self, request, context):
        self.calls += 1
        if self.calls <= self.failures:
            context.abort(self.code, f"failure {self.calls}")
        return pb2.GetIndexInfoResponse(index_version="v1", count=7)


class NeverAnswers(pb2_grpc.ThoughtTemplateServiceServicer):
    """GetIndexInfo blocks until the test ends, so every deadline expires."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def GetIndexInfo(self, request, context):
        self.released.wait(60)
        return pb2.GetIndexInfoResponse()


@pytest.fixture
def scripted_server() -> Iterator[tuple[str, list[pb2_grpc.ThoughtTemplateServiceServicer]]]:
    """An in-process gRPC server running the servicer each test puts in the yielded list."""
    current: list[pb2_grpc.ThoughtTemplateServiceServicer] = []

    class Delegate(pb2_grpc.ThoughtTemplateServiceServicer):
        def GetIndexInfo(self, request, context):
            return current[0].GetIndexInfo(request, context)

    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    pb2_grpc.add_ThoughtTemplateServiceServicer_to_server(Delegate(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", current
    finally:
        for servicer in current:
            if isinstance(servicer, NeverAnswers):
                servicer.released.set()
        server.stop(None)


def test_deadline_default_and_per_call(scripted_server) -> None:
    address, current = scripted_server
    current.append(NeverAnswers())
    with ThoughtbankClient(address, timeout=0.2) as hasty:
        with pytest.raises(DeadlineExceededError) as expired:
            hasty.index_info()
    assert expired.value.code == grpc.StatusCode.DEADLINE_EXCEEDED

    async def call_with_own_deadline() -> None:
        async with AsyncThoughtbankClient(address, timeout=300) as patient:
            await patient.index_info(timeout=0.2)

    with pytest.raises(DeadlineExceededError):
        asyncio.run(call_with_own_deadline())


def test_unavailable_is_retried_by_the_channel(scripted_server) -> None:
    address, current = scripted_server
    current.append(FailingFirst(4, grpc.StatusCode.UNAVAILABLE))
    with ThoughtbankClient(address, retry=QUICK_RETRY) as client:
        assert client.index_info().count == 7
    assert current[0].calls == 5


def test_without_retries_unavailable_surfaces(scripted_server) -> None:
    address, current = scripted_server
    current.append(FailingFirst(1, grpc.StatusCode.UNAVAILABLE))
    with ThoughtbankClient(address, retry=None) as client:
        with pytest.raises(IndexUnavailableError, match="failure 1"):
            client.index_info()
    assert current[0].calls == 1


def test_other_errors_are_not_retried(scripted_server) -> None:
    address, current = scripted_server
    current.append(FailingFirst(1, grpc.StatusCode.INVALID_ARGUMENT))

    async def call() -> None:
        async with AsyncThoughtbankClient(address, retry=QUICK_RETRY) as client:
            await client.index_info()

    with pytest.raises(InvalidRequestError, match="failure 1"):
        asyncio.run(call())
    assert current[0].calls == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LateServer:
    """A TLS + token server started after a waiting client had already made its call."""

    server: ServerProcess
    early_answer: RetrievalResult | BaseException


@pytest.fixture(scope="module")
def secured_server(demo_index: Path, tls_files, tmp_path_factory) -> Iterator[LateServer]:
    cert, key = tls_files
    token_file = tmp_path_factory.mktemp("auth") / "token"
    token_file.write_text(f"{TOKEN}\n")
    port = free_port()
    answers: list[RetrievalResult | BaseException] = []

    def ask() -> None:
        with ThoughtbankClient(
            f"127.0.0.1:{port}",
            wait_for_ready=True,
            timeout=300,
            token=TOKEN,
            root_certificates=cert,
        ) as client:
            try:
                answers.append(client.retrieve("How many pens are left?", k=1))
            except BaseException as exc:
                answers.append(exc)

    caller = threading.Thread(target=ask)
    caller.start()
    with ServerProcess(
        demo_index,
        extra_args=(
            "--port",
            str(port),
            "--auth-token-file",
            str(token_file),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ),
    ) as server:
        caller.join(300)
        yield LateServer(server, answers[0] if answers else TimeoutError("no answer"))


def test_waiting_client_gets_its_answer_from_a_server_started_later(secured_server) -> None:
    answer = secured_server.early_answer
    assert isinstance(answer, RetrievalResult), answer
    assert [hit.template.task for hit in answer.hits] == ["gsm8k"]


def test_token_and_tls_reach_a_secured_server(secured_server, tls_files) -> None:
    cert, _ = tls_files
    with ThoughtbankClient(
        secured_server.server.address, token=TOKEN, root_certificates=cert
    ) as client:
        assert client.index_info().count > 0

    async def call() -> int:
        async with AsyncThoughtbankClient(
            secured_server.server.address, token=TOKEN, root_certificates=cert.read_bytes()
        ) as client:
            return (await client.index_info()).count

    assert asyncio.run(call()) > 0


@pytest.mark.parametrize(
    ("token", "message"), [(None, "missing credentials"), ("wrong", "invalid bearer token")]
)
def test_bad_credentials_are_unauthenticated(
    secured_server, tls_files, token: str | None, message: str
) -> None:
    with ThoughtbankClient(
        secured_server.server.address, token=token, root_certificates=tls_files[0]
    ) as client:
        with pytest.raises(AuthenticationError, match=message) as refused:
            client.index_info()
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_plaintext_client_cannot_talk_to_a_tls_server(secured_server) -> None:
    with ThoughtbankClient(
        secured_server.server.address, token=TOKEN, retry=None, timeout=10
    ) as client:
        with pytest.raises(IndexUnavailableError):
            client.index_info()
