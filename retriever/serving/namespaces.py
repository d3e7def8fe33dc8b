"""The namespaces one server holds, each an index folder with its own live version, outcome
store and outcome evidence.

``--index INDEX_DIR`` is one namespace, ``default``. ``--index-root ROOT`` makes every folder
directly under ROOT whose name fits ``NAMESPACE_NAME`` a namespace: one that appears is loaded,
one that goes is dropped, each reloads on its own, and one that fails to load never touches
another. Namespaces whose versions embed with the same model, backend and precision share one
loaded model (``SharedEmbedders``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thoughtbank.echo import echo
from thoughtbank.index import Embedder, IndexManifest, LoadedIndex, manifest_embedder
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.retriever.errors import (
    INDEX_LOADING_MESSAGE,
    NAMESPACE_NOT_FOUND_PREFIX,
    IndexUnavailableError,
    NamespaceNotFoundError,
    ThoughtbankError,
)
from thoughtbank.retriever.serving.access import Grant
from thoughtbank.retriever.serving.engine import EmbeddingChoice, RetrievalEngine
from thoughtbank.retriever.serving.feedback import UsefulnessRanking, read_evidence
from thoughtbank.retriever.serving.reload import LiveEngine, load_index_to_start
from thoughtbank.retriever.types import DEFAULT_NAMESPACE, NamespaceInfo

log = logging.getLogger("thoughtbank.server.namespaces")

NAMESPACE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class SharedEmbedders:
    """One loaded embedder per (model, backend, precision) among all namespaces of a server;
    an embedder no live engine holds any more is freed with its last engine."""

    def __init__(self, choice: EmbeddingChoice) -> None:
        self._choice = choice
        self._loaded: weakref.WeakValueDictionary[tuple[str, str, str], Embedder] = (
            weakref.WeakValueDictionary()
        )
        self._lock = threading.Lock()

    def __call__(self, manifest: IndexManifest) -> Embedder:
        key = self._choice.resolved(manifest)
        with self._lock:  # two namespaces loading at once must not load the model twice
            embedder = self._loaded.get(key)
            if embedder is None:
                embedder = manifest_embedder(manifest, key[1], key[2])
                self._loaded[key] = embedder
            return embedder


@dataclass
class Namespace:
    """One namespace's serving state."""

    name: str
    live: LiveEngine
    outcomes: OutcomeStore
    feedback: UsefulnessRanking
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    def info(self) -> NamespaceInfo:
        engine = self.live.engine
        if engine is None:
            return NamespaceInfo(self.name, "", 0)
        return NamespaceInfo(self.name, engine.version, engine.size)

    def read_evidence(self) -> None:
        read_evidence(self.outcomes, self.feedback)


@dataclass(frozen=True)
class NamespaceHooks:
    """What the server does when a namespace changes: metrics and readiness."""

    on_swap: Callable[[str, RetrievalEngine], Awaitable[None]]
    on_failure: Callable[[str], None]
    on_drop: Callable[[str], None]


def namespace_folders(root: Path) -> dict[str, Path]:
    """The index folders under ``root`` by namespace name; folders whose names are no valid
    namespace name are skipped (logged by the caller once)."""
    return {
        entry.name: entry
        for entry in sorted(root.iterdir())
        if entry.is_dir() and NAMESPACE_NAME.fullmatch(entry.name)
    }


def namespace_not_found(name: str) -> NamespaceNotFoundError:
    return NamespaceNotFoundError(f"{NAMESPACE_NOT_FOUND_PREFIX}{echo(name)} on this server")


def misnamed_folders(root: Path) -> list[str]:
    """Folders under ``root`` (hidden ones aside) that cannot be namespaces by their names."""
    return sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir()
        and not entry.name.startswith(".")
        and not NAMESPACE_NAME.fullmatch(entry.name)
    )


class Namespaces:
    """The namespaces a server serves, kept in step with ``--index`` or ``--index-root``."""

    def __init__(
        self,
        index_dir: Path | None,
        index_root: Path | None,
        engine_settings: dict[str, Any],
        make_feedback: Callable[[], UsefulnessRanking],
        hooks: NamespaceHooks,
        reload_interval: float,
        first_index: LoadedIndex | None = None,
    ) -> None:
        """``first_index``: the version of ``index_dir`` checked before the server bound."""
        if (index_dir is None) == (index_root is None):
            raise ValueError("give exactly one of an index directory and an index root")
        self.index_dir = index_dir
        self.index_root = index_root
        self._settings = engine_settings
        self._make_feedback = make_feedback
        self._hooks = hooks
        self._reload_interval = reload_interval
        self._first_index = first_index
        self._held: dict[str, Namespace] = {}
        self._scanned = False  # the first sync has finished: a name not held now is unknown
        self._reported_misnamed: set[str] = set()
        self._embedders = SharedEmbedders(engine_settings.get("embedding", EmbeddingChoice()))
        self._syncing = asyncio.Lock()

    def __iter__(self) -> Iterator[Namespace]:
        return iter(list(self._held.values()))

    def get(self, name: str) -> Namespace | None:
        return self._held.get(name)

    def resolve(self, grant: Grant, requested: str) -> Namespace:
        """The namespace a request names ('' = default): PERMISSION_DENIED outside the
        caller's grant (whether it exists or not), UNAVAILABLE while it may still be loading,
        NOT_FOUND when not held."""
        name = requested or DEFAULT_NAMESPACE
        grant.check(name)
        namespace = self._held.get(name)
        if namespace is None:
            raise self.not_held(name)
        return namespace

    def not_held(self, name: str) -> ThoughtbankError:
        """What a request for ``name``, not held now, is answered: UNAVAILABLE while it may
        still be loading (the ``--index`` one, or any before the first scan), else NOT_FOUND."""
        loading = name == DEFAULT_NAMESPACE if self.index_dir is not None else not self._scanned
        return (
            IndexUnavailableError(INDEX_LOADING_MESSAGE) if loading else namespace_not_found(name)
        )

    def readable(self, grant: Grant) -> list[Namespace]:
        return [self._held[name] for name in sorted(self._held) if grant.allows(name)]

    def _folders(self) -> dict[str, Path]:
        if self.index_dir is not None:
            return {DEFAULT_NAMESPACE: self.index_dir}
        assert self.index_root is not None
        misnamed = set(misnamed_folders(self.index_root)) - self._reported_misnamed
        for name in sorted(misnamed):
            log.warning(
                "folder under the index root skipped: not a namespace name",
                extra={"folder": name, "pattern": NAMESPACE_NAME.pattern},
            )
        self._reported_misnamed |= misnamed
        return namespace_folders(self.index_root)

    async def sync(self) -> None:
        """Load the namespaces that appeared and drop those that went, each load on its own."""
        async with self._syncing:
            await self._sync()

    async def _sync(self) -> None:
        try:
            folders = await asyncio.to_thread(self._folders)
        except OSError as exc:  # the root unmounted or unreadable: keep what serves
            log.error("cannot list the index root", extra={"reason": str(exc)})
            return
        for name in sorted(set(self._held) - set(folders)):
            self._drop(name)
        added = [name for name in sorted(folders) if name not in self._held]
        # One load at a time: loads share the GIL anyway, and one load's garbage interleaved
        # with another's live objects would keep the interpreter's heap from shrinking.
        for name in added:
            await self._add(name, folders[name])
        self._scanned = True

    async def _add(self, name: str, index_dir: Path) -> None:
        first_index, self._first_index = self._first_index, None
        try:
            if first_index is None:
                first_index = await asyncio.to_thread(load_index_to_start, index_dir)
        except Exception as exc:  # with a root, no folder may stop the others
            if self.index_root is None:
                raise  # one index given: a server does not start on a damaged one
            log.error(
                "namespace not loaded; it is retried when its CURRENT changes",
                extra={"namespace": name, "reason": str(exc)},
            )
            self._hooks.on_failure(name)
        namespace = self._open(name, index_dir, first_index)
        await asyncio.to_thread(namespace.read_evidence)
        self._held[name] = namespace
        log.info("namespace added", extra={"namespace": name, "index": str(index_dir)})
        await namespace.live.refresh()
        if self._reload_interval and self._held.get(name) is namespace:
            namespace.watcher = asyncio.get_running_loop().create_task(
                namespace.live.watch(self._reload_interval)
            )

    def _open(self, name: str, index_dir: Path, first_index: LoadedIndex | None) -> Namespace:
        feedback = self._make_feedback()

        async def on_swap(engine: RetrievalEngine) -> None:
            await self._hooks.on_swap(name, engine)

        live = LiveEngine(
            index_dir,
            {**self._settings, "feedback": feedback},
            on_swap,
            on_failure=lambda _version, _exc: self._hooks.on_failure(name),
            first_index=first_index,
            embedder_for=self._embedders,
        )
        return Namespace(name, live, OutcomeStore(index_dir), feedback)

    def _drop(self, name: str) -> None:
        namespace = self._held.pop(name)
        if namespace.watcher is not None:
            namespace.watcher.cancel()
        self._hooks.on_drop(name)
        log.info("namespace dropped: its folder is gone", extra={"namespace": name})

    async def refresh(self, force: bool = False) -> None:
        """Rescan (with ``--index-root``) and reload every namespace whose CURRENT moved."""
        await self.sync()
        await asyncio.gather(*(n.live.refresh(force) for n in self))

    async def watch(self, interval: float) -> None:
        """Rescan the root every ``interval`` seconds (each namespace polls its own CURRENT)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except Exception:  # a failed scan or load must not stop the next one
                log.exception("index root scan failed")

    def close(self) -> None:
        for namespace in self:
            if namespace.watcher is not None:
                namespace.watcher.cancel()
