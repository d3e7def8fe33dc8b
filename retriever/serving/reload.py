"""Hot reload: the live ``RetrievalEngine`` and the swap to a new index version.

A new version is loaded, verified and warmed up in a thread of its own while the old one keeps
serving; only then is the reference swapped, which is atomic. The thread ends with the load, and
with it the OpenMP threads its warm-up started, which would otherwise keep torch's runtime
managing more threads than there are cores (see ``micro_batcher``). Requests already
running hold the old engine and finish on it.

Reloading cannot stop: whatever reading CURRENT or loading a version raises is logged once,
counted as a failed reload, and the watcher carries on. A version that fails to load is not
retried until CURRENT names another version or a reload is forced (SIGHUP); a CURRENT that
names no version is read again on every poll and reported again only when its failure changes.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from thoughtbank.index import (
    Embedder,
    IndexArtifactError,
    IndexDamagedError,
    IndexManifest,
    LoadedIndex,
    current_version,
    load_index,
)
from thoughtbank.index.artifact import CURRENT_FILE
from thoughtbank.retriever.serving.engine import RetrievalEngine

log = logging.getLogger("thoughtbank.server.reload")


def load_index_to_start(index_dir: Path) -> LoadedIndex | None:
    """The live version, loaded, for a server to start on; None while there is no CURRENT yet
    (the server waits for one). ``IndexDamagedError`` if CURRENT or its version is damaged:
    a server does not start on that."""
    try:
        return load_index(index_dir)
    except IndexDamagedError:
        raise
    except IndexArtifactError:
        return None


def return_freed_memory() -> None:
    """Hand what a load freed back to the OS: glibc keeps it in the loading thread's arena,
    where each namespace's load would leave its own."""
    if sys.platform.startswith("linux"):
        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # musl has none
        if trim is not None:
            trim(0)


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, IndexArtifactError) else f"{type(exc).__name__}: {exc}"


class LiveEngine:
    """Holds the engine that serves now; ``refresh`` moves it to the version CURRENT names."""

    def __init__(
        self,
        index_dir: Path,
        settings: dict[str, Any],
        on_swap: Callable[[RetrievalEngine], Awaitable[None]],
        on_failure: Callable[[str, Exception], None],
        first_index: LoadedIndex | None = None,
        embedder_for: Callable[[IndexManifest], Embedder] | None = None,
    ) -> None:
        """``first_index``: the version checked at start-up, used while CURRENT names it.
        ``embedder_for``: where a version's embedder comes from (default: loaded for it)."""
        self.index_dir = Path(index_dir)
        self._embedder_for = embedder_for
        self._first_index = first_index
        self.engine: RetrievalEngine | None = None
        self._settings = settings
        self._on_swap = on_swap
        self._on_failure = on_failure
        self._failed_version: str | None = None
        self._current_failure: str | None = None
        self._lock = asyncio.Lock()

    def _named_version(self) -> str | None:
        """The version CURRENT names, or None while it names none (reported once per change)."""
        try:
            version = current_version(self.index_dir)
        except Exception as exc:  # damaged, EMFILE, a folder named CURRENT: poll again
            if isinstance(exc, IndexArtifactError) and not isinstance(exc, IndexDamagedError):
                return None  # no index built yet: keep waiting for one
            self._report_current(exc)
            return None
        self._current_failure = None
        return version

    def _report_current(self, exc: Exception) -> None:
        reason = _reason(exc)
        if reason != self._current_failure:
            self._current_failure = reason
            self._report_failure(CURRENT_FILE, exc)

    def _report_failure(self, subject: str, exc: Exception) -> None:
        live = self.engine.version if self.engine else None
        log.error(
            "index version refused; the previous one keeps serving",
            extra={"version": subject, "previous": live, "reason": _reason(exc)},
        )
        self._on_failure(subject, exc)

    def _open(self, version: str) -> RetrievalEngine:
        """The first engine, on the index loaded at start-up unless CURRENT moved on since."""
        index, self._first_index = self._first_index, None
        if index is None or index.version != version:
            index = load_index(self.index_dir, version)
        embedder = self._embedder_for(index.manifest) if self._embedder_for else None
        return RetrievalEngine.of_index(index, embedder, **self._settings)

    def _load(self, version: str) -> RetrievalEngine:
        if self.engine is None:
            engine = self._open(version)
        else:
            engine = self.engine.reloaded(self.index_dir, version, self._embedder_for)
        # An embedder kept from the live engine is warm already: its warm-up is shared.
        engine.warm_up(model=self.engine is None or engine.embedder is not self.engine.embedder)
        return engine

    async def _load_in_own_thread(self, version: str) -> RetrievalEngine:
        loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-load")
        try:
            return await asyncio.get_running_loop().run_in_executor(loader, self._load, version)
        finally:
            loader.shutdown(wait=False)  # the thread ends once the load has

    async def refresh(self, force: bool = False) -> bool:
        """Load the version CURRENT names if it is new; return whether the live one changed."""
        async with self._lock:
            if force:
                self._current_failure = None  # a damaged CURRENT is reported again
            version = self._named_version()
            live = self.engine.version if self.engine else None
            if version is None or version == live:
                return False
            if version == self._failed_version and not force:
                return False
            log.info("loading index version", extra={"version": version, "previous": live})
            try:
                engine = await self._load_in_own_thread(version)
            except Exception as exc:  # no version may stop reloading, whatever it raises
                self._failed_version = version
                self._report_failure(version, exc)
                return False
            self.engine = engine
            self._failed_version = None
            await asyncio.to_thread(return_freed_memory)
            log.info(
                "index version live",
                extra={"version": version, "previous": live, "templates": engine.size},
            )
            await self._on_swap(engine)
            return True

    async def watch(self, interval: float) -> None:
        """Poll CURRENT every ``interval`` seconds (reading a small file is cheaper than inotify
        plumbing and works on every file system)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # from on_swap, the caller's code: the next poll tries again
                log.exception("index reload check failed")
