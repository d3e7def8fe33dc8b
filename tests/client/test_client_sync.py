"""ThoughtbankClient against a real server subprocess, and the in-process mode against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from thoughtbank.retriever import (
    InvalidRequestError,
    RetrievalQuery,
    TemplateNotFoundError,
    ThoughtbankClient,
)

ARITHMETIC = "Tom has 14 marbles and loses 5. How many marbles does Tom have left?"


@pytest.fixture(scope="module")
def remote(demo_server) -> Iterator[ThoughtbankClient]:
    with ThoughtbankClient(demo_server.address) as client:
        yield client


@pytest.fixture(scope="module")
def local(demo_index: Path) -> Iterator[ThoughtbankClient]:
    with ThoughtbankClient.local(demo_index) as client:
        yield client


def test_retrieve_returns_typed_hits_best_first(remote: ThoughtbankClient) -> None:
    result = remote.retrieve(ARITHMETIC, k=3)
    assert len(result.hits) == 3
    assert result.hits[0].template.task == "gsm8k"
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert {h.index_version for h in result.hits} == {result.index_version}


def test_retrieve_options_reach_the_server(remote: ThoughtbankClient) -> None:
    strict = remote.retrieve(RetrievalQuery(ARITHMETIC, k=5, task="mbpp", task_strict=True))
    assert {h.template.task for h in strict.hits} == {"mbpp"}
    everything = remote.retrieve(ARITHMETIC, k=5)
    threshold = everything.hits[1].score
    assert len(remote.retrieve(ARITHMETIC, k=5, min_score=threshold).hits) == 2


def test_retrieve_batch_keeps_request_order(remote: ThoughtbankClient) -> None:
    results = remote.retrieve_batch(
        [
            "Where would you keep milk cold?",
            ARITHMETIC,
            RetrievalQuery("Write a Python function to sort a list.", k=1),
        ],
        k=2,
    )
    assert [len(r.hits) for r in results] == [2, 2, 1]
    assert [r.hits[0].template.task for r in results] == ["commonsense_qa", "gsm8k", "mbpp"]


def test_augment_prompt_holds_the_templates_then_the_query(remote: ThoughtbankClient) -> None:
    augmented = remote.augment(ARITHMETIC, k=2)
    assert len(augmented.hits) == 2
    assert augmented.hits[0].template.text in augmented.prompt
    assert augmented.prompt.index("Similar question 1") < augmented.prompt.index(ARITHMETIC)


def test_augment_token_budget_drops_templates(remote: ThoughtbankClient) -> None:
    assert len(remote.augment(ARITHMETIC, k=3, max_template_tokens=1).hits) == 0


def test_get_template_and_index_info(remote: ThoughtbankClient) -> None:
    hit = remote.retrieve(ARITHMETIC, k=1).hits[0]
    assert remote.get_template(hit.template.id) == hit.template
    info = remote.index_info()
    assert info.count == sum(info.task_counts.values()) > 0
    assert info.dimension == 384
    assert info.index_version == hit.index_version


def test_errors_keep_the_grpc_code_and_message(remote: ThoughtbankClient) -> None:
    with pytest.raises(InvalidRequestError, match="k must be between 1 and 100") as invalid:
        remote.retrieve(ARITHMETIC, k=101)
    assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(TemplateNotFoundError) as missing:
        remote.get_template("no-such-id")
    assert missing.value.code == grpc.StatusCode.NOT_FOUND and "no-such-id" in missing.value.message


def test_closed_client_refuses_calls(demo_server) -> None:
    client = ThoughtbankClient(demo_server.address)
    with client:
        assert client.index_info().count > 0
    with pytest.raises(ValueError, match="closed channel"):
        client.index_info()


def test_local_mode_answers_like_the_server(
    remote: ThoughtbankClient, local: ThoughtbankClient
) -> None:
    assert local.address.startswith("local:")
    here_info, there_info = local.index_info(), remote.index_info()
    assert replace(here_info, manifest={}) == replace(there_info, manifest={})
    assert json.loads(json.dumps(here_info.manifest)) == there_info.manifest
    here, there = local.augment(ARITHMETIC, k=2), remote.augment(ARITHMETIC, k=2)
    assert here.prompt == there.prompt
    assert [h.template.id for h in here.hits] == [h.template.id for h in there.hits]
    assert local.get_template(here.hits[0].template.id) == here.hits[0].template
    with pytest.raises(InvalidRequestError, match="empty"):
        local.retrieve("  ")
