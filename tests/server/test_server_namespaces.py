"""Namespaces on a real server: ``--index-root`` folders, per-token access, isolation, folders
that come and go while clients run, tokens re-read on SIGHUP."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from server_testkit import rpc_error, scrape_metrics, service_stub

from thoughtbank.index import build_index
from thoughtbank.protos import pb2
from thoughtbank.retriever import OutcomeRecord, ThoughtbankClient
from thoughtbank.retriever.errors import (
    IndexUnavailableError,
    NamespaceNotFoundError,
    PermissionDeniedError,
)
from thoughtbank.retriever.serving.access import EVERYTHING
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.templates import ExtractiveDistiller, mine_templates, read_templates

from conftest import unscanned_namespaces

ALPHA_TASKS = {"gsm8k", "mbpp"}
RELOAD_INTERVAL = 0.5
WAIT_S = 120.0
CLIENT_THREADS = 32
TOKENS = """
[[token]]
token = "alpha-secret"
namespaces = ["alpha"]

[[token]]
sha256 = "{beta_sha}"
namespaces = ["beta"]

[[token]]
token = "admin-secret"
namespaces = ["*"]
"""


def _mine(rows: list[str], folder: Path) -> Path:
    logs = folder / "logs.jsonl"
    logs.write_text("".join(rows))
    out = folder / "templates.jsonl"
    mine_templates([logs], out, ExtractiveDistiller())
    return out


@pytest.fixture(scope="module")
def index_root(embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two namespaces mined from two different logs: the demo log's rows split by task."""
    from thoughtbank.demo import demo_logs_path

    work = tmp_path_factory.mktemp("namespace-logs")
    rows = demo_logs_path().read_text().splitlines(keepends=True)
    root = tmp_path_factory.mktemp("index-root")
    for name, keep in (("alpha", True), ("beta", False)):
        chosen = [r for r in rows if (json.loads(r)["task_name"] in ALPHA_TASKS) == keep]
        (work / name).mkdir()
        templates = list(read_templates(_mine(chosen, work / name)))
        build_index(templates, root / name, embedder)
    return root


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.toml"
    path.write_text(TOKENS.format(beta_sha=hashlib.sha256(b"beta-secret").hexdigest()))
    return path


@pytest.fixture(scope="module")
def server(index_root: Path, tokens_file: Path) -> Iterator[ServerProcess]:
    args = ["--auth-tokens-file", str(tokens_file), "--reload-interval", str(RELOAD_INTERVAL)]
    with ServerProcess(None, index_root=index_root, extra_args=[*args, "--metrics-port", "0"]) as p:
        yield p


def _ids(index_dir: Path) -> set[str]:
    from thoughtbank.index import load_index

    return {t.id for t in load_index(index_dir).templates.values()}


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _every_rpc(namespace: str, template_id: str) -> dict[str, object]:
    """One well-formed request per namespaced RPC, all naming ``namespace``."""
    return {
        "Retrieve": pb2.RetrieveRequest(query="How many apples?", k=2, namespace=namespace),
        "RetrieveBatch": pb2.RetrieveBatchRequest(
            requests=[pb2.RetrieveRequest(query="q", k=1)], namespace=namespace
        ),
        "AugmentPrompt": pb2.AugmentPromptRequest(query="q", k=1, namespace=namespace),
        "GetTemplate": pb2.GetTemplateRequest(id=template_id, namespace=namespace),
        "GetIndexInfo": pb2.GetIndexInfoRequest(namespace=namespace),
        "RecordOutcome": pb2.RecordOutcomeRequest(
            outcome_id="o-1", template_ids=[template_id], score=1.0, namespace=namespace
        ),
        "RecordOutcomes": pb2.RecordOutcomesRequest(
            outcomes=[
                pb2.RecordOutcomeRequest(outcome_id="o-2", template_ids=[template_id], score=1)
            ],
            namespace=namespace,
        ),
    }


def test_a_token_reads_its_own_namespace_and_nothing_else(
    server: ServerProcess, index_root: Path
) -> None:
    alpha_ids, beta_ids = _ids(index_root / "alpha"), _ids(index_root / "beta")
    beta_id = sorted(beta_ids)[0]
    with grpc.insecure_channel(server.address) as channel:
        stub = service_stub(channel)
        hits = stub.Retrieve(
            pb2.RetrieveRequest(query="How many apples?", k=5, namespace="alpha"),
            metadata=_auth("alpha-secret"),
            timeout=30,
        ).hits
        assert hits and {h.template.id for h in hits} <= alpha_ids
        listed = stub.ListNamespaces(
            pb2.ListNamespacesRequest(), metadata=_auth("alpha-secret"), timeout=30
        )
        assert [(n.name, n.count) for n in listed.namespaces] == [("alpha", len(alpha_ids))]
        # Another tenant's namespace and one that does not exist are refused alike.
        for namespace in ("beta", "gamma", ""):
            for rpc, request in _every_rpc(namespace, beta_id).items():
                error = rpc_error(
                    getattr(stub, rpc), request, metadata=_auth("alpha-secret"), timeout=30
                )
                assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (rpc, namespace)
                asked = namespace or "default"
                assert error.details() == f"this token may not read namespace {asked!r}"
        info = stub.GetIndexInfo(
            pb2.GetIndexInfoRequest(namespace="beta"), metadata=_auth("beta-secret"), timeout=30
        )
        assert info.count == len(beta_ids)


def test_credentials_are_checked_before_anything_else(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = service_stub(channel)
        for metadata in ((), _auth("wrong"), (("authorization", "alpha-secret"),)):
            for rpc, request in _every_rpc("alpha", "x").items():
                error = rpc_error(getattr(stub, rpc), request, metadata=metadata, timeout=30)
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED, (rpc, metadata)
            error = rpc_error(
                stub.ListNamespaces, pb2.ListNamespacesRequest(), metadata=metadata, timeout=30
            )
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_token_for_every_namespace_sees_all_and_gets_not_found_for_none(
    server: ServerProcess,
) -> None:
    with ThoughtbankClient(server.address, token="admin-secret", namespace="beta") as client:
        assert [n.name for n in client.list_namespaces()] == ["alpha", "beta"]
        assert client.index_info().count == client.list_namespaces()[1].count
        assert client.retrieve("How many apples?", namespace="alpha").hits
        with pytest.raises(NamespaceNotFoundError, match="no namespace 'gamma'"):
            client.retrieve("q", namespace="gamma")
    with ThoughtbankClient(server.address, token="alpha-secret") as client:
        with pytest.raises(PermissionDeniedError, match="may not read namespace 'beta'"):
            client.retrieve("q", namespace="beta")


def test_the_cli_lists_and_reads_the_namespaces_of_its_token(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from thoughtbank.cli import main

    token = tmp_path / "token"
    token.write_text("alpha-secret")
    connection = ["--server", server.address, "--token-file", str(token)]
    assert main(["namespaces", *connection, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["namespaces"]
    assert [n["name"] for n in listed] == ["alpha"] and listed[0]["count"] > 0
    assert main(["info", *connection, "--namespace", "alpha", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == listed[0]["count"]
    assert main(["info", *connection, "--namespace", "beta"]) != 0
    assert "may not read namespace 'beta'" in capsys.readouterr().err


def test_a_batch_item_naming_another_namespace_is_invalid(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        request = pb2.RetrieveBatchRequest(
            requests=[pb2.RetrieveRequest(query="q", k=1, namespace="beta")], namespace="alpha"
        )
        error = rpc_error(
            service_stub(channel).RetrieveBatch,
            request,
            metadata=_auth("admin-secret"),
            timeout=30,
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "requests[0].namespace 'beta'" in error.details()


def test_outcomes_go_to_their_namespace_store(server: ServerProcess, index_root: Path) -> None:
    from thoughtbank.index.outcomes import OutcomeStore

    beta_id = sorted(_ids(index_root / "beta"))[0]
    with ThoughtbankClient(server.address, token="beta-secret", namespace="beta") as client:
        assert client.record_outcome(OutcomeRecord("beta-1", (beta_id,), 0.9))
    with OutcomeStore(index_root / "beta") as store:
        assert "beta-1" in store.outcome_ids()
    assert not OutcomeStore(index_root / "alpha").path.exists()


def _hammer(
    server: ServerProcess, stop: threading.Event, failures: list[str], calls: list[int]
) -> Callable[[], None]:
    def run() -> None:
        with ThoughtbankClient(server.address, token="admin-secret", namespace="alpha") as client:
            while not stop.is_set():
                try:
                    client.retrieve("How many apples are left?")
                    calls.append(1)
                except Exception as exc:  # every failure is the test's business
                    failures.append(repr(exc))

    return run


def _wait_until(condition: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > WAIT_S:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def _serves(server: ServerProcess, namespace: str) -> bool:
    with ThoughtbankClient(server.address, token="admin-secret", namespace=namespace) as client:
        try:
            return bool(client.retrieve("How many apples?").hits)
        except Exception:  # NOT_FOUND, or UNAVAILABLE until its first version is live
            return False


def test_namespaces_come_and_go_under_load_without_failing_others(
    server: ServerProcess, index_root: Path
) -> None:
    stop, failures, calls = threading.Event(), [], []
    threads = [
        threading.Thread(target=_hammer(server, stop, failures, calls))
        for _ in range(CLIENT_THREADS)
    ]
    for thread in threads:
        thread.start()
    try:
        staging = index_root / ".gamma.partial"
        shutil.copytree(index_root / "alpha", staging)
        staging.rename(index_root / "gamma")  # a complete folder appears at once
        took = _wait_until(lambda: _serves(server, "gamma"), "namespace gamma to be served")
        broken = index_root / "broken"
        broken.mkdir()
        (broken / "CURRENT").write_text("no-such-version\n")
        time.sleep(RELOAD_INTERVAL * 4)
        shutil.rmtree(index_root / "gamma")
        _wait_until(lambda: not _serves(server, "gamma"), "namespace gamma to be dropped")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(calls) > CLIENT_THREADS
    assert took < WAIT_S
    with ThoughtbankClient(server.address, token="admin-secret") as client:
        listed = {n.name: n.index_version for n in client.list_namespaces()}
    assert listed.keys() == {"alpha", "beta", "broken"} and listed["broken"] == ""
    assert server.metrics_port is not None
    metrics = scrape_metrics(server.host, server.metrics_port)
    assert 'thoughtbank_requests_total{code="OK",namespace="alpha",rpc="Retrieve"}' in metrics
    assert 'thoughtbank_index_templates{namespace="beta"}' in metrics
    assert 'thoughtbank_index_templates{namespace="gamma"}' not in metrics
    shutil.rmtree(broken)


def test_sighup_reads_the_tokens_again(server: ServerProcess, tokens_file: Path) -> None:
    original = tokens_file.read_text()
    try:
        tokens_file.write_text(
            original + '\n[[token]]\ntoken = "new-secret"\nnamespaces = ["beta"]\n'
        )
        server.send_signal(signal.SIGHUP)

        def new_token_works() -> bool:
            with ThoughtbankClient(server.address, token="new-secret", namespace="beta") as c:
                try:
                    return c.index_info().count > 0
                except Exception:  # UNAUTHENTICATED until the tokens are read again
                    return False

        _wait_until(new_token_works, "the new token to be accepted")
        tokens_file.write_text("not = [valid")  # a broken file keeps the tokens in force
        server.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        with ThoughtbankClient(server.address, token="new-secret", namespace="beta") as client:
            assert client.index_info().count > 0
    finally:
        tokens_file.write_text(original)
        server.send_signal(signal.SIGHUP)


def test_a_name_is_unavailable_until_the_first_scan_and_then_not_found(tmp_path: Path) -> None:
    """A request that races the server's first scan must hear "retry", not "no such namespace"."""
    (tmp_path / "alpha").mkdir()

    async def scan() -> None:
        namespaces = unscanned_namespaces(None, tmp_path)
        for name in ("alpha", "gamma"):
            with pytest.raises(IndexUnavailableError, match="no index is loaded yet"):
                namespaces.resolve(EVERYTHING, name)
        await namespaces.sync()
        assert namespaces.resolve(EVERYTHING, "alpha").name == "alpha"
        with pytest.raises(NamespaceNotFoundError, match="no namespace 'gamma'"):
            namespaces.resolve(EVERYTHING, "gamma")
        namespaces.close()

    asyncio.run(scan())
