"""Fixtures of the template browser tests: an index holding hostile template text, and the
browser app or a real server over it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from thoughtbank.index import build_index
from thoughtbank.retriever.serving.browser.app import Shelf
from thoughtbank.retriever.serving.browser.run import BrowserServer
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.schema import template_id
from thoughtbank.templates import read_templates

#: A log row's text as it might be mined: markup that would run if a page rendered it raw.
HOSTILE_TEXT = (
    "Task: count the zanzibar apples <script>window.__pwned = 1</script>\n"
    "Reasoning steps:\n1. <img src=x onerror=\"document.title='pwned'\"> count them\n"
    "Answer format: a number"
)
HOSTILE_WORD = "zanzibar"


@pytest.fixture(scope="session")
def hostile_index(demo_templates: Path, embedder, tmp_path_factory: pytest.TempPathFactory):
    """The demo templates plus one whose text holds a <script> and an <img onerror>."""
    templates = list(read_templates(demo_templates))
    model = templates[0]
    query = "How many zanzibar apples are left? <script>window.__pwned = 2</script>"
    hostile = replace(
        model,
        id=template_id(model.task, query, HOSTILE_TEXT, model.source_models),
        text=HOSTILE_TEXT,
        source_query=query,
        flags=("leakage",),
        merged_queries=(),
    )
    index_dir = tmp_path_factory.mktemp("hostile-index")
    build_index([*templates, hostile], index_dir, embedder)
    return index_dir, hostile


@pytest.fixture(scope="session")
def hostile_engine(hostile_index, embedder) -> RetrievalEngine:
    return RetrievalEngine.open(hostile_index[0], embedder)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def browser_url(hostile_engine: RetrievalEngine) -> Iterator[str]:
    """The browser over the hostile index, served by uvicorn on a free loopback port."""
    with BrowserServer(Shelf(lambda: {"default": hostile_engine}), "127.0.0.1", 0) as server:
        yield server.url.rstrip("/")
