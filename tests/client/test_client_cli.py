"""The client-side commands: query, augment, info, template, augment-file and their errors."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

import grpc
import pytest

from thoughtbank._version import __version__
from thoughtbank.cli import main
from thoughtbank.protos import pb2_grpc
from thoughtbank.retriever.errors import INDEX_LOADING_MESSAGE

from conftest import REPO_ROOT

QUESTION = "Where do people usually keep their winter coats?"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"thoughtbank {__version__}"


def test_read_commands_print_json(demo_server, capsys: pytest.CaptureFixture[str]) -> None:
    server = ("--server", demo_server.address)
    result = run_json(capsys, "query", QUESTION, *server, "--k", "2", "--json")
    assert [hit["template"]["task"] for hit in result["hits"]] == ["commonsense_qa"] * 2
    top_id = result["hits"][0]["template"]["id"]
    augmented = run_json(capsys, "augment", QUESTION, *server, "--k", "1", "--json")
    assert QUESTION in augmented["prompt"] and augmented["hits"][0]["template"]["id"] == top_id
    info = run_json(capsys, "info", *server, "--json")
    assert info["count"] == sum(info["task_counts"].values()) > 0
    assert info["index_version"] == result["index_version"]
    assert run_json(capsys, "template", top_id, *server, "--json")["id"] == top_id


def test_read_commands_print_text(demo_server, capsys: pytest.CaptureFixture[str]) -> None:
    count = run_json(capsys, "info", "--server", demo_server.address, "--json")["count"]
    assert main(["info", "--server", demo_server.address]) == 0
    assert f": {count} templates, " in capsys.readouterr().out
    assert main(["augment", QUESTION, "--server", demo_server.address]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-2] == f"Question: {QUESTION}"


def test_in_process_index_gives_the_same_answer(
    demo_server, demo_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = run_json(capsys, "query", QUESTION, "--server", demo_server.address, "--json")
    local = run_json(capsys, "query", QUESTION, "--index", str(demo_index), "--json")
    assert [h["template"]["id"] for h in local["hits"]] == [
        h["template"]["id"] for h in remote["hits"]
    ]


def test_missing_server_says_how_to_start_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", QUESTION, "--server", "127.0.0.1:1", "--timeout", "5"]) == 2
    message = capsys.readouterr().err
    assert message.startswith("thoughtbank: UNAVAILABLE: the thoughtbank server at 127.0.0.1:1")
    assert "thoughtbank serve --index INDEX_DIR" in message


class StillLoading(pb2_grpc.ThoughtTemplateServiceServicer):
    """Answers as a server does before its index is loaded."""

    def Retrieve(self, request, context):
        context.abort(grpc.StatusCode.UNAVAILABLE, INDEX_LOADING_MESSAGE)


@contextmanager
def in_process_server(
    servicer: pb2_grpc.ThoughtTemplateServiceServicer,
    credentials: grpc.ServerCredentials | None = None,
) -> Iterator[str]:
    """``servicer`` on a free loopback port (TLS with ``credentials``); yields its address."""
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    pb2_grpc.add_ThoughtTemplateServiceServicer_to_server(servicer, server)
    address = "127.0.0.1:0"
    port = (
        server.add_secure_port(address, credentials)
        if credentials
        else server.add_insecure_port(address)
    )
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def test_a_plaintext_client_of_a_tls_server_is_told_to_pass_tls_ca(
    tls_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = tls_files
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    with in_process_server(pb2_grpc.ThoughtTemplateServiceServicer(), credentials) as address:
        assert main(["query", QUESTION, "--server", address, "--timeout", "5"]) == 2
    message = capsys.readouterr().err
    assert f"{address} speaks TLS and this client connected without it" in message
    assert "pass --tls-ca" in message and "Start one with" not in message


def test_a_server_loading_its_index_is_not_called_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with in_process_server(StillLoading()) as address:
        assert main(["query", QUESTION, "--server", address, "--timeout", "5"]) == 2
    message = capsys.readouterr().err
    assert "is running and still loading its index" in message and "--wait" in message
    assert "Start one with" not in message


def test_wait_without_a_server_says_what_it_waited_for(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["query", QUESTION, "--server", "127.0.0.1:1", "--wait", "--timeout", "1"]) == 2
    message = capsys.readouterr().err
    assert message.startswith("thoughtbank: DEADLINE_EXCEEDED: waited 1 s (--timeout)")
    assert "the thoughtbank server at 127.0.0.1:1" in message


def test_an_empty_prompt_says_why(demo_server, capsys: pytest.CaptureFixture[str]) -> None:
    tight = ["--server", demo_server.address, "--max-template-tokens", "1"]
    assert main(["augment", QUESTION, *tight]) == 0
    out, err = capsys.readouterr()
    assert QUESTION in out
    assert "the prompt holds no template: none fits within --max-template-tokens 1" in err


def test_info_json_summarizes_the_probe_embeddings(
    demo_server, capsys: pytest.CaptureFixture[str]
) -> None:
    info = run_json(capsys, "info", "--server", demo_server.address, "--json")
    probes = info["manifest"]["embedder_probes"]
    assert probes and all(probe["dimension"] == info["dimension"] for probe in probes)
    assert all(len(probe["first_values"]) == 4 and probe["norm"] > 0 for probe in probes)


@pytest.mark.slow
def test_a_closed_pipe_ends_the_command_quietly(demo_index: Path) -> None:
    command = [sys.executable, "-m", "thoughtbank.cli", "info", "--index", str(demo_index)]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader went away before the first line, as `| head -0` does
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Broken pipe" not in stderr and "Traceback" not in stderr


def test_server_errors_are_one_line(demo_server, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "no-such-id", "--server", demo_server.address]) == 2
    assert capsys.readouterr().err.startswith("thoughtbank: NOT_FOUND: no template")


def test_augment_file_keeps_order_and_skips_bad_lines(
    demo_server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = [f"How many apples are left if I eat {n} of 20?" for n in range(1, 8)]
    lines = [
        json.dumps({"id": n, "prompt": q, "kind": "gsm8k"}).encode()
        for n, q in enumerate(questions)
    ]
    too_long = json.dumps({"id": "y", "prompt": "x" * 40_000}).encode()
    lines[2:2] = [
        b"{not json",
        json.dumps({"id": "x", "prompt": ""}).encode(),
        json.dumps(["a"]).encode(),
        too_long,
        b'{"id": "z", "prompt": "caf\xe9"}',
    ]
    source = tmp_path / "queries.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n\n")
    out = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "augment-file",
                str(source),
                "--out",
                str(out),
                "--server",
                demo_server.address,
                "--query-column",
                "prompt",
                "--task-column",
                "kind",
                "--k",
                "2",
                "--concurrency",
                "3",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["id"] for row in rows] == list(range(7))
    assert all(
        row["prompt"] in row["augmented_prompt"] and len(row["template_ids"]) == 2 for row in rows
    )
    err = capsys.readouterr().err
    for line, reason in (
        (3, "not JSON"),
        (4, "no text in column 'prompt'"),
        (5, "not a JSON object"),
        (6, "rejected by the server"),
        (7, "not UTF-8 text"),
    ):
        assert f"queries.jsonl:{line}: skipped: {reason}" in err
    assert "7 augmented rows written" in err and "5 of 12 skipped" in err


def test_augment_file_needs_an_existing_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    assert main(["augment-file", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 2
    assert "missing.jsonl" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_augment_file_on_fusionbench_queries(
    demo_server, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = shared_data / "fusionbench_14_task_queries.jsonl.gz"
    out = tmp_path / "augmented.jsonl"
    assert (
        main(
            [
                "augment-file",
                str(source),
                "--out",
                str(out),
                "--limit",
                "200",
                "--server",
                demo_server.address,
            ]
        )
        == 0
    )
    with gzip.open(source, "rt") as queries:
        expected = [json.loads(line) for line in islice(queries, 200)]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["query_id"], r["task_name"]) for r in rows] == [
        (e["query_id"], e["task_name"]) for e in expected
    ]
    assert all(
        row["query"] in row["augmented_prompt"] and len(row["template_ids"]) == 3 for row in rows
    )
    assert "200 augmented rows written" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--token-file", "--tls-ca"])
def test_credential_files_are_checked_where_they_enter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    absent = tmp_path / "absent.pem"
    for given, message in [(absent, f"no such file '{absent}'"), (tmp_path, "is a directory")]:
        with pytest.raises(SystemExit) as refused:
            main(["query", QUESTION, flag, str(given)])
        assert refused.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {flag}: " in err and message in err
