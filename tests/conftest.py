"""Shared fixtures: the demo index (built once per session) and a real server subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
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
