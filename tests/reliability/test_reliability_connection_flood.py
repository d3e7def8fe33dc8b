"""R7: a flood of idle unauthenticated sockets under a low open-files limit.

300 raw TCP sockets that never speak HTTP/2, against a server allowed 256 descriptors: the server
must keep descriptors for itself (connections capped below the limit, idle handshakes closed), so
a real client that connects afterwards is served, health stays SERVING and the CURRENT watcher
still picks up a new version. Before the cap, accept hit EMFILE and every new client hung.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from reliability_support import SERVING, health_status, wait_for

from thoughtbank.index import build_index
from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.templates import read_templates

pytestmark = pytest.mark.slow

FILE_LIMIT = 256
IDLE_SOCKETS = 300


@contextmanager
def open_files_limit(soft: int) -> Iterator[None]:
    """This process's soft RLIMIT_NOFILE lowered while the block runs; children inherit it."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def served_version(address: str) -> str:
    with ThoughtbankClient(address, timeout=60, wait_for_ready=True) as client:
        return client.index_info().index_version


def test_idle_sockets_do_not_starve_clients_or_the_watcher(
    demo_index: Path, demo_templates: Path, embedder, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(demo_index, index_dir)
    with open_files_limit(FILE_LIMIT):
        server = ServerProcess(index_dir)
    with server, ExitStack() as sockets:
        for _ in range(IDLE_SOCKETS):
            sockets.enter_context(socket.create_connection((server.host, server.port)))
        assert open_descriptors(server.pid) < FILE_LIMIT
        # A new client waits at most for the idle handshakes to time out, then is served.
        with ThoughtbankClient(server.address, timeout=60, wait_for_ready=True) as client:
            assert client.retrieve("Where do fish live?", k=1).hits
        assert health_status(server.address) == SERVING
        version = build_index(list(read_templates(demo_templates)), index_dir, embedder).version
        wait_for(lambda: served_version(server.address) == version, 60, "the watcher's reload")
