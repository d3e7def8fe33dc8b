"""R4: 10 hot swaps of the index under 32 concurrent clients, then a corrupted version.

New versions are written into the served INDEX_DIR with the public ``build_index`` (which
switches CURRENT atomically); the server picks them up by watching CURRENT (odd swaps) or on
SIGHUP (even swaps). Swap completion is observed from the clients' side: the version a response
carries. A corrupted version named in CURRENT must be refused while the previous one serves, and
the next good version must still be picked up.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import SERVING, ClosedLoopLoad, health_status, wait_for

from thoughtbank.index import build_index, current_version
from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.templates import read_templates

pytestmark = pytest.mark.slow

SWAPS = 10
CLIENTS = 32
SWAP_TIMEOUT = 90.0
#: Longer than the server's default CURRENT polling interval (2 s) plus a small index's load.
REFUSAL_SETTLE_SECONDS = 5.0


def corrupt_copy_of_live_version(index_dir: Path, name: str) -> None:
    """Copy the live version under a new name with a truncated FAISS file; name it in CURRENT.

    Uses only the documented layout (``versions/<version>/``, ``CURRENT``), as an operator's
    botched copy would.
    """
    versions = index_dir / "versions"
    damaged = versions / name
    shutil.copytree(versions / current_version(index_dir), damaged)
    faiss_file = damaged / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:64])
    staging = index_dir / ".CURRENT.corrupt"
    staging.write_text(name + "\n")
    staging.replace(index_dir / "CURRENT")


@pytest.fixture(scope="module")
def swap_setup(
    demo_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, ServerProcess]]:
    index_dir = tmp_path_factory.mktemp("hot-swap") / "index"
    shutil.copytree(demo_index, index_dir)
    with ServerProcess(index_dir) as server:
        yield index_dir, server


def served_version(address: str) -> str:
    with ThoughtbankClient(address) as client:
        return client.index_info().index_version


def test_ten_hot_swaps_under_load_lose_no_request_and_a_corrupt_version_is_refused(
    swap_setup: tuple[Path, ServerProcess],
    demo_templates: Path,
    embedder,
) -> None:
    index_dir, server = swap_setup
    templates = list(read_templates(demo_templates))
    load = ClosedLoopLoad(server.address, clients=CLIENTS).start()
    try:
        versions = []
        for swap in range(SWAPS):
            version = build_index(
                templates[: len(templates) - 1 - swap], index_dir, embedder
            ).version
            if swap % 2:
                server.send_signal(signal.SIGHUP)
            wait_for(
                lambda v=version: v in load.report.first_seen,
                SWAP_TIMEOUT,
                f"clients to see version {version} (swap {swap + 1})",
            )
            versions.append(version)

        corrupt_copy_of_live_version(index_dir, "99991231T000000000000Z-corrupt")
        server.send_signal(signal.SIGHUP)
        time.sleep(REFUSAL_SETTLE_SECONDS)
        assert served_version(server.address) == versions[-1]
        assert health_status(server.address) == SERVING

        recovery = build_index(templates, index_dir, embedder).version
        wait_for(
            lambda: recovery in load.report.first_seen,
            SWAP_TIMEOUT,
            "the version after the corrupt one",
        )
    finally:
        report = load.stop()
    assert report.failed == 0, f"failed requests by code: {dict(report.failures)}"
    assert report.ok > SWAPS * CLIENTS
    assert "99991231T000000000000Z-corrupt" not in report.first_seen
    assert set(versions) <= set(report.first_seen)
