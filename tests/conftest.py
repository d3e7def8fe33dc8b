"""Shared fixtures: the demo index (built once per session), a real server subprocess and the
template browser's bank with hostile text."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("THOUGHTBANK_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` with the real logs; tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set THOUGHTBANK_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedder():
    from thoughtbank.index import load_embedder

    return load_embedder()


@pytest.fixture(scope="session")
def demo_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from thoughtbank.demo import demo_logs_path
    from thoughtbank.templates import ExtractiveDistiller, mine_templates

    out = tmp_path_factory.mktemp("demo") / "templates.jsonl"
    summary = mine_templates([demo_logs_path()], out, ExtractiveDistiller())
    assert summary.templates == 32
    return out


@pytest.fixture(scope="session")
def demo_index(demo_templates: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from thoughtbank.index import build_index
    from thoughtbank.templates import read_templates

    index_dir = tmp_path_factory.mktemp("demo-index")
    build_index(list(read_templates(demo_templates)), index_dir, embedder)
    return index_dir


@pytest.fixture(scope="session")
def demo_server(demo_index: Path) -> Iterator:
    """``thoughtbank serve`` on the demo index, as a real subprocess on a free loopback port."""
    from thoughtbank.retriever.serving.process import ServerProcess

    server = ServerProcess(demo_index)
    try:
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``make dist`` builds (``pip wheel --no-deps``), built once per session."""
    from wheel_support import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))


#: A log row's text as it might be mined: markup that would run if a page rendered it raw.
HOSTILE_TEXT = (
    "Task: count the zanzibar apples <script>window.__pwned = 1</script>\n"
    "Reasoning steps:\n1. <img src=x onerror=\"document.title='pwned'\"> count them\n"
    "Answer format: a number"
)
HOSTILE_WORD = "zanzibar"


@pytest.fixture(scope="session")
def hostile_index(demo_templates: Path, embedder, tmp_path_factory: pytest.TempPathFactory):
    """The template browser's bank: the demo templates plus one whose text holds a <script>
    and an <img onerror>; (index folder, that template)."""
    from thoughtbank.index import build_index
    from thoughtbank.schema import template_id
    from thoughtbank.templates import read_templates

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
def hostile_engine(hostile_index, embedder):
    from thoughtbank.retriever.serving.engine import RetrievalEngine

    return RetrievalEngine.open(hostile_index[0], embedder)


def unscanned_namespaces(index_dir: Path | None, index_root: Path | None):
    """A server's ``Namespaces`` as it is before its first scan (nothing loaded yet)."""
    from thoughtbank.retriever.serving.feedback import UsefulnessRanking
    from thoughtbank.retriever.serving.namespaces import NamespaceHooks, Namespaces

    async def on_swap(_name: str, _engine: object) -> None:
        return None

    hooks = NamespaceHooks(on_swap, on_failure=lambda _n: None, on_drop=lambda _n: None)
    return Namespaces(index_dir, index_root, {}, UsefulnessRanking, hooks, reload_interval=0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def browser_url(hostile_engine) -> Iterator[str]:
    """The browser over the hostile index, served by uvicorn on a free loopback port."""
    from thoughtbank.retriever.serving.browser.app import Shelf
    from thoughtbank.retriever.serving.browser.run import BrowserServer

    with BrowserServer(Shelf(lambda: {"default": hostile_engine}), "127.0.0.1", 0) as server:
        yield server.url.rstrip("/")
