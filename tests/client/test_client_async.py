"""AsyncThoughtbankClient (grpc.aio) against a real server subprocess, and in-process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from thoughtbank.retriever import (
    AsyncThoughtbankClient,
    AugmentedPrompt,
    InvalidRequestError,
    RetrievalResult,
    TemplateNotFoundError,
    ThoughtbankClient,
)

QUERY = "Where would you store ice cream to keep it frozen?"


def ranking(result: RetrievalResult | AugmentedPrompt) -> list[tuple[str, float]]:
    """Hit ids with scores rounded: the server embeds concurrent queries in one padded batch."""
    return [(hit.template.id, round(hit.score, 3)) for hit in result.hits]


async def every_method(client: AsyncThoughtbankClient) -> dict[str, object]:
    async with client:
        retrieved, batch, augmented, info = await asyncio.gather(
            client.retrieve(QUERY, k=2),
            client.retrieve_batch([QUERY, "What is 9 times 6?"], k=1),
            client.augment(QUERY, k=2),
            client.index_info(),
        )
        template = await client.get_template(retrieved.hits[0].template.id)
    return {
        "retrieve": retrieved,
        "batch": batch,
        "augment": augmented,
        "info": info,
        "template": template,
    }


def test_every_method_matches_the_sync_client(demo_server) -> None:
    got = asyncio.run(every_method(AsyncThoughtbankClient(demo_server.address)))
    with ThoughtbankClient(demo_server.address) as sync:
        assert ranking(got["retrieve"]) == ranking(sync.retrieve(QUERY, k=2))
        assert [ranking(r) for r in got["batch"]] == [
            ranking(r) for r in sync.retrieve_batch([QUERY, "What is 9 times 6?"], k=1)
        ]
        assert ranking(got["augment"]) == ranking(sync.augment(QUERY, k=2))
        assert got["info"] == sync.index_info()
    assert got["template"] == got["retrieve"].hits[0].template
    assert got["retrieve"].hits[0].template.task == "commonsense_qa"


def test_local_async_client_answers_like_the_server(demo_server, demo_index: Path) -> None:
    local = asyncio.run(every_method(AsyncThoughtbankClient.local(demo_index)))
    remote = asyncio.run(every_method(AsyncThoughtbankClient(demo_server.address)))
    assert ranking(local["augment"]) == ranking(remote["augment"])
    assert (local["template"].id, local["template"].text) == (
        remote["template"].id,
        remote["template"].text,
    )


async def failures(address: str) -> list[tuple[type[Exception], grpc.StatusCode]]:
    async with AsyncThoughtbankClient(address) as client:
        calls = [client.retrieve(""), client.get_template("nope")]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    return [(type(error), error.code) for error in outcomes]


def test_errors_are_mapped(demo_server) -> None:
    assert asyncio.run(failures(demo_server.address)) == [
        (InvalidRequestError, grpc.StatusCode.INVALID_ARGUMENT),
        (TemplateNotFoundError, grpc.StatusCode.NOT_FOUND),
    ]


def test_closed_async_client_refuses_calls(demo_server) -> None:
    async def call_after_close() -> None:
        client = AsyncThoughtbankClient(demo_server.address)
        await client.close()
        await client.index_info()

    with pytest.raises(ValueError, match="closed channel"):
        asyncio.run(call_after_close())
