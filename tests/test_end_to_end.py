"""Walking skeleton: `thoughtbank serve` as a real subprocess, called over gRPC."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from thoughtbank.retriever import InvalidRequestError, TemplateNotFoundError, ThoughtbankClient

from conftest import REPO_ROOT


def test_client_built_from_proto_alone(demo_server, tmp_path: Path) -> None:
    from grpc_tools import protoc

    proto_root = tmp_path / "protos"
    shutil.copytree(REPO_ROOT / "protos" / "thoughtbank", proto_root / "thoughtbank")
    generated = tmp_path / "generated"
    (generated / "thoughtbank" / "v1").mkdir(parents=True)
    assert (
        protoc.main(
            [
                "protoc",
                f"-I{proto_root}",
                f"--python_out={generated}",
                f"--grpc_python_out={generated}",
                str(proto_root / "thoughtbank/v1/thought_templates.proto"),
            ]
        )
        == 0
    )
    run = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tests" / "proto_only_client.py"),
            str(generated),
            demo_server.address,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=True,
    )
    out = json.loads(run.stdout)
    assert [hit["task"] for hit in out["retrieve"]] == ["gsm8k", "gsm8k"]
    assert out["retrieve"][0]["score"] > out["retrieve"][1]["score"] > 0
    assert out["index_version"]
    assert out["empty_query"][0] == "INVALID_ARGUMENT" and "empty" in out["empty_query"][1]
    assert out["k_zero"][0] == "INVALID_ARGUMENT" and "k must be" in out["k_zero"][1]


def test_health_is_serving_and_reflection_lists_the_service(demo_server) -> None:
    with grpc.insecure_channel(demo_server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "thoughtbank.v1.ThoughtTemplateService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
        assert "thoughtbank.v1.ThoughtTemplateService" in services
        assert "grpc.health.v1.Health" in services


@pytest.mark.parametrize(
    ("query", "task"),
    [
        (
            "Leo buys 5 crates of pears with 18 pears in each crate and gives away 7. "
            "How many pears does Leo have left?",
            "gsm8k",
        ),
        ("What is the acceleration of a 3 kg mass pushed by a 12 N force?", "mmlu_pro/physics"),
        ("Where would you store ice cream to keep it frozen?", "commonsense_qa"),
        ("Write a Python function to count the words in a sentence.", "mbpp"),
    ],
)
def test_query_of_a_task_retrieves_that_task_first(demo_server, query: str, task: str) -> None:
    with ThoughtbankClient(demo_server.address) as client:
        result = client.retrieve(query, k=3)
    assert result.hits[0].template.task == task
    assert all(h.index_version == result.index_version for h in result.hits)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_sdk_calls_every_rpc(demo_server) -> None:
    with ThoughtbankClient(demo_server.address) as client:
        info = client.index_info()
        assert info.count == 32
        assert info.task_counts == {
            "commonsense_qa": 8,
            "gsm8k": 8,
            "mbpp": 8,
            "mmlu_pro/physics": 8,
        }
        assert info.dimension == 384
        hit = client.retrieve("Write a Python function to reverse a list.", k=1).hits[0]
        assert client.get_template(hit.template.id) == hit.template
        augmented = client.augment("Write a Python function to reverse a list.", k=2)
        assert augmented.prompt.index("Similar question 1") < augmented.prompt.index(
            "Question: Write a Python function to reverse a list."
        )
        assert augmented.hits[0].template.text in augmented.prompt
        from thoughtbank.retriever.types import RetrievalQuery

        batch = client.retrieve_batch(
            [RetrievalQuery("Where do birds live?", k=1), RetrievalQuery("What is 7 times 8?", k=2)]
        )
        assert [len(r.hits) for r in batch] == [1, 2]


def test_bad_requests_get_clear_errors(demo_server) -> None:
    with ThoughtbankClient(demo_server.address) as client:
        with pytest.raises(InvalidRequestError, match="empty"):
            client.retrieve("   ")
        with pytest.raises(InvalidRequestError, match="k must be between 1 and 100"):
            client.retrieve("hello", k=0)
        with pytest.raises(TemplateNotFoundError, match="no template"):
            client.get_template("does-not-exist")
        assert client.retrieve("still serving?", k=1).hits


def test_cli_query_and_augment(demo_server) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "thoughtbank.cli",
            "query",
            "Where do fish live?",
            "--server",
            demo_server.address,
            "--k",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    hits = json.loads(run.stdout)["hits"]
    assert len(hits) == 2 and hits[0]["template"]["task"] == "commonsense_qa"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "thoughtbank.cli",
            "augment",
            "Where do fish live?",
            "--server",
            demo_server.address,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Question: Where do fish live?" in run.stdout
