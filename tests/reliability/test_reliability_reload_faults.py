"""Hot reload cannot die: a running server meets every kind of damaged version and CURRENT.

Each damage is made live in the served index in turn. The server must refuse it, count one
failed reload (once per change, however many polls see it), keep serving the previous version,
and still pick up the intact version named next. A server started on a damaged index refuses
to start with one line saying DAMAGED and why, before it listens. EMFILE while reading CURRENT
is produced for real in this process, against the watcher's own ``LiveEngine``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path

import pytest
from damaged_versions import (
    CURRENT_DAMAGE,
    VERSION_DAMAGE,
    copy_version,
    live_version,
    make_current_a_folder,
    point_current_at,
    write_current,
)
from reliability_support import SERVING, health_status, metric_value, run_cli, wait_for

from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.retriever.serving.process import LISTENING_PREFIX, ServerProcess
from thoughtbank.retriever.serving.reload import LiveEngine

pytestmark = pytest.mark.slow

POLL_S = 0.2
#: Several polls: a damage seen again must not be counted (nor logged) again.
SETTLE_S = 6 * POLL_S
WAIT_S = 90.0
_names = count(1)


def _new_name(label: str) -> str:
    """Version names sort by time; these sort after the demo build's and in creation order."""
    return f"99990101T{next(_names):06d}000000Z-{label}"


def _damage_version(kind: str) -> Callable[[Path, str], None]:
    def apply(index_dir: Path, intact: str) -> None:
        name = _new_name(kind)
        copy_version(index_dir, name, VERSION_DAMAGE[kind][0], source=intact)
        point_current_at(index_dir, name)

    return apply


def _damage_current(kind: str) -> Callable[[Path, str], None]:
    return lambda index_dir, _intact: write_current(index_dir, CURRENT_DAMAGE[kind][0])


DAMAGES: dict[str, Callable[[Path, str], None]] = {
    **{f"version-{kind}": _damage_version(kind) for kind in VERSION_DAMAGE},
    **{f"current-{kind}": _damage_current(kind) for kind in CURRENT_DAMAGE},
    "current-a-folder": lambda index_dir, _intact: make_current_a_folder(index_dir),
}


@pytest.fixture(scope="module")
def served(
    demo_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, ServerProcess]]:
    index_dir = tmp_path_factory.mktemp("reload-faults") / "index"
    shutil.copytree(demo_index, index_dir)
    args = ("--reload-interval", str(POLL_S), "--metrics-port", "0")
    with ServerProcess(index_dir, extra_args=args) as server:
        yield index_dir, server


def failed_reloads(server: ServerProcess) -> float:
    assert server.metrics_port is not None
    series = 'thoughtbank_index_reloads_total{namespace="default",outcome="failed"}'
    return metric_value(server.host, server.metrics_port, series)


def served_version(server: ServerProcess) -> str:
    with ThoughtbankClient(server.address) as client:
        return client.retrieve("How many apples are left?").index_version


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_version_or_current_is_counted_once_and_the_next_good_one_loads(
    served: tuple[Path, ServerProcess], damage: str
) -> None:
    index_dir, server = served
    intact = served_version(server)
    before = failed_reloads(server)
    DAMAGES[damage](index_dir, intact)
    wait_for(lambda: failed_reloads(server) > before, WAIT_S, f"{damage} to be refused")
    time.sleep(SETTLE_S)
    assert failed_reloads(server) == before + 1
    assert served_version(server) == intact and health_status(server.address) == SERVING

    good = _new_name("good")
    copy_version(index_dir, good, source=intact)
    point_current_at(index_dir, good)
    wait_for(lambda: served_version(server) == good, WAIT_S, f"{good} after {damage}")
    assert failed_reloads(server) == before + 1


@pytest.mark.parametrize(
    "damage", ["version-manifest-is-a-list", "version-embeddings-0d", "current-not-utf8"]
)
def test_serve_on_a_damaged_index_refuses_to_start_with_one_line(
    demo_index: Path, tmp_path: Path, damage: str
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(demo_index, index_dir)
    DAMAGES[damage](index_dir, live_version(index_dir))
    finished = run_cli("serve", "--index", index_dir, "--port", "0", timeout=120)
    assert finished.returncode == 2
    assert LISTENING_PREFIX not in finished.stdout
    assert finished.stderr.startswith("thoughtbank: error: DAMAGED ")
    assert len(finished.stderr.strip().splitlines()) == 1, finished.stderr


@contextmanager
def descriptors_exhausted() -> Iterator[None]:
    """Every file descriptor this process may open is taken (EMFILE), until the block ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
    held: list[int] = []
    try:
        with pytest.raises(OSError) as exhausted:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        assert exhausted.value.errno == errno.EMFILE
        yield
    finally:
        for descriptor in held:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_emfile_while_reading_current_is_counted_once_and_the_watcher_carries_on(
    demo_index: Path, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(demo_index, index_dir)
    failures: list[tuple[str, Exception]] = []
    swapped: list[str] = []

    async def on_swap(engine: RetrievalEngine) -> None:
        swapped.append(engine.version)

    live = LiveEngine(index_dir, {}, on_swap, lambda subject, exc: failures.append((subject, exc)))
    loop = asyncio.new_event_loop()  # before the descriptors run out: a loop needs some
    try:
        with descriptors_exhausted():
            for _ in range(3):
                assert not loop.run_until_complete(live.refresh())
        assert [subject for subject, _ in failures] == ["CURRENT"]
        assert isinstance(failures[0][1], OSError) and failures[0][1].errno == errno.EMFILE
        assert loop.run_until_complete(live.refresh())
    finally:
        loop.close()
    assert swapped == [live_version(index_dir)] and len(failures) == 1
