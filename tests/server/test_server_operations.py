"""A real server subprocess with TLS, bearer-token auth, metrics and a layered configuration:
status codes, auth, limits and metrics as a client sees them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from server_testkit import (
    SelfSignedCertificate,
    health_status,
    make_self_signed_certificate,
    retrieve_request,
    rpc_error,
    scrape_metrics,
    service_stub,
)

from thoughtbank.protos import pb2
from thoughtbank.retriever.serving.process import ServerProcess

TOKEN = "s3cret-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
CUSTOM_PROMPT = "CUSTOM PROMPT\n{templates}\nQ: {query}\n{answer_instruction}"
PEAR_QUESTION = "Leo buys 5 crates of pears with 18 pears in each. How many pears does he have?"


@dataclass
class SecuredServer:
    process: ServerProcess
    certificate: SelfSignedCertificate

    def channel(self) -> grpc.Channel:
        credentials = grpc.ssl_channel_credentials(root_certificates=self.certificate.pem)
        return grpc.secure_channel(self.process.address, credentials)


@pytest.fixture(scope="module")
def secured(demo_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredServer]:
    """TOML sets four options, the environment overrides one, a flag overrides another."""
    folder = tmp_path_factory.mktemp("secured")
    certificate = make_self_signed_certificate(folder)
    (folder / "token").write_text(TOKEN + "\n")
    (folder / "prompt.txt").write_text(CUSTOM_PROMPT)
    (folder / "server.toml").write_text(
        "[server]\n"
        "max_query_chars = 5000\n"
        "max_concurrent_rpcs = 3\n"
        f'auth_token_file = "{folder / "token"}"\n'
        f'prompt_template_file = "{folder / "prompt.txt"}"\n'
    )
    process = ServerProcess(
        demo_index,
        extra_args=(
            "--config",
            str(folder / "server.toml"),
            "--max-concurrent-rpcs",
            "2",
            "--tls-cert",
            str(certificate.cert_path),
            "--tls-key",
            str(certificate.key_path),
            "--metrics-port",
            "0",
        ),
        env={**os.environ, "THOUGHTBANK_MAX_QUERY_CHARS": "2000"},
    )
    try:
        yield SecuredServer(process, certificate)
    finally:
        assert process.stop() == 0


def test_plaintext_clients_cannot_talk_to_a_tls_server(secured: SecuredServer) -> None:
    with grpc.insecure_channel(secured.process.address) as channel:
        error = rpc_error(service_stub(channel).Retrieve, retrieve_request("hi"), timeout=5)
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_calls_without_the_right_token_are_unauthenticated(secured: SecuredServer) -> None:
    with secured.channel() as channel:
        stub = service_stub(channel)
        missing = rpc_error(stub.Retrieve, retrieve_request("hi"), timeout=10)
        wrong = rpc_error(
            stub.GetIndexInfo,
            pb2.GetIndexInfoRequest(),
            timeout=10,
            metadata=(("authorization", "Bearer nope"),),
        )
        reply = stub.Retrieve(retrieve_request(PEAR_QUESTION), timeout=30, metadata=AUTH)
    assert missing.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer" in missing.details()
    assert wrong.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.details() == "invalid bearer token"
    assert reply.hits[0].template.task == "gsm8k"


def test_health_stays_open_without_a_token(secured: SecuredServer) -> None:
    with secured.channel() as channel:
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"query": "  ", "k": 3}, "query must not be empty"),
        ({"query": "x" * 2001, "k": 3}, "over the limit of 2000"),  # env beat the TOML's 5000
        ({"query": "hi", "k": 0}, "k must be between 1 and 100, got 0"),
        ({"query": "hi", "k": 101}, "k must be between 1 and 100, got 101"),
        ({"query": "hi", "k": 3, "diversity": 1.5}, "diversity (MMR lambda) must be in [0, 1]"),
        ({"query": "hi", "k": 3, "task": "chess", "task_strict": True}, "unknown task 'chess'"),
        ({"query": "hi", "k": 3, "task_strict": True}, "task_strict needs a task"),
        ({"query": "hi", "k": 3, "ef_search": 0}, "ef_search must be at least 1"),
    ],
)
def test_invalid_requests_say_what_is_wrong(
    secured: SecuredServer, request_fields: dict, message: str
) -> None:
    with secured.channel() as channel:
        error = rpc_error(
            service_stub(channel).Retrieve,
            pb2.RetrieveRequest(**request_fields),
            timeout=10,
            metadata=AUTH,
        )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()


def test_batch_errors_name_the_failing_request(secured: SecuredServer) -> None:
    batch = pb2.RetrieveBatchRequest(requests=[retrieve_request("fine"), retrieve_request("")])
    with secured.channel() as channel:
        error = rpc_error(service_stub(channel).RetrieveBatch, batch, timeout=10, metadata=AUTH)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "request 1: query must not be empty"


def test_batches_and_messages_over_their_limits_are_refused(secured: SecuredServer) -> None:
    too_many = pb2.RetrieveBatchRequest(requests=[retrieve_request("q")] * 1001)
    too_big = retrieve_request("x" * (5 * 1024 * 1024))  # over the 4 MiB message limit
    with secured.channel() as channel:
        stub = service_stub(channel)
        batch_error = rpc_error(stub.RetrieveBatch, too_many, timeout=10, metadata=AUTH)
        size_error = rpc_error(stub.Retrieve, too_big, timeout=10, metadata=AUTH)
    assert batch_error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "1001 requests in one batch, over the limit of 1000" in batch_error.details()
    assert size_error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in size_error.details()


def test_unknown_template_is_not_found(secured: SecuredServer) -> None:
    with secured.channel() as channel:
        error = rpc_error(
            service_stub(channel).GetTemplate,
            pb2.GetTemplateRequest(id="nope"),
            timeout=10,
            metadata=AUTH,
        )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "no template with id 'nope'" in error.details()


def test_augment_uses_the_configured_prompt_and_token_budget(secured: SecuredServer) -> None:
    with secured.channel() as channel:
        stub = service_stub(channel)
        full = stub.AugmentPrompt(
            pb2.AugmentPromptRequest(query=PEAR_QUESTION, k=3), timeout=30, metadata=AUTH
        )
        trimmed = stub.AugmentPrompt(
            pb2.AugmentPromptRequest(query=PEAR_QUESTION, k=3, max_template_tokens=400),
            timeout=30,
            metadata=AUTH,
        )
        none_fit = stub.AugmentPrompt(
            pb2.AugmentPromptRequest(query=PEAR_QUESTION, k=3, max_template_tokens=0),
            timeout=30,
            metadata=AUTH,
        )
        best_id = full.hits[0].template.id
        without_best = stub.AugmentPrompt(
            pb2.AugmentPromptRequest(query=PEAR_QUESTION, k=3, exclude_ids=[best_id]),
            timeout=30,
            metadata=AUTH,
        )
    assert full.prompt.startswith("CUSTOM PROMPT\n") and len(full.hits) == 3
    assert 0 < len(trimmed.hits) < 3
    assert [h.template.id for h in trimmed.hits] == [h.template.id for h in full.hits][
        : len(trimmed.hits)
    ]
    assert not none_fit.hits and none_fit.prompt.startswith(f"Question: {PEAR_QUESTION}")
    assert best_id not in [h.template.id for h in without_best.hits]


def test_over_the_concurrency_limit_is_resource_exhausted(secured: SecuredServer) -> None:
    heavy = pb2.RetrieveBatchRequest(
        requests=[retrieve_request(f"question number {i} about pears") for i in range(24)]
    )
    with secured.channel() as channel, ThreadPoolExecutor(12) as pool:
        stub = service_stub(channel)
        calls = [
            pool.submit(stub.RetrieveBatch.future(heavy, timeout=60, metadata=AUTH).exception)
            for _ in range(12)
        ]
        errors = [call.result() for call in calls]
    refused = [e for e in errors if e is not None]
    assert len(refused) < len(errors), "some calls should be within the limit"
    assert refused, "calls beyond two in flight should be refused"
    assert all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused)
    assert "limit of 2 concurrent requests" in refused[0].details()  # the flag beat the TOML's 3


def test_deadline_is_honoured_and_the_server_carries_on(secured: SecuredServer) -> None:
    heavy = pb2.RetrieveBatchRequest(
        requests=[retrieve_request(f"a long list of questions, number {i}") for i in range(64)]
    )
    with secured.channel() as channel:
        stub = service_stub(channel)
        error = rpc_error(stub.RetrieveBatch, heavy, timeout=0.01, metadata=AUTH)
        after = stub.Retrieve(retrieve_request(PEAR_QUESTION), timeout=30, metadata=AUTH)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert after.hits


def test_metrics_are_scraped_over_http(secured: SecuredServer) -> None:
    with secured.channel() as channel:
        stub = service_stub(channel)
        stub.Retrieve(retrieve_request(PEAR_QUESTION), timeout=30, metadata=AUTH)
        rpc_error(stub.Retrieve, retrieve_request(""), timeout=10, metadata=AUTH)
        info = stub.GetIndexInfo(pb2.GetIndexInfoRequest(), timeout=10, metadata=AUTH)
    assert secured.process.metrics_port is not None
    text = scrape_metrics(secured.process.host, secured.process.metrics_port)
    assert 'thoughtbank_requests_total{code="OK",namespace="default",rpc="Retrieve"}' in text
    assert (
        'thoughtbank_requests_total{code="INVALID_ARGUMENT",namespace="default",rpc="Retrieve"}'
        in text
    )
    assert (
        'thoughtbank_request_latency_seconds_bucket{code="OK",le="0.64",namespace="default",'
        'rpc="Retrieve"}' in text
    )
    assert "thoughtbank_batch_size_count" in text
    assert (
        f'thoughtbank_index_version_info{{namespace="default",version="{info.index_version}"}} 1.0'
        in text
    )
    assert 'thoughtbank_index_templates{namespace="default"} 32.0' in text
