"""What the browser lists of one engine's version: search, task filter, sorting and paging.

Built once per engine (a version), lazily on its first page: a lowercase search text per
template and, per sort key, one array of keys. A listing (the rows matching a search and a task,
in an order) is an array of row numbers cached for the next pages, so paging through a million
templates slices an array and builds HTML for one page only.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from thoughtbank.echo import echo
from thoughtbank.index import template_int_id
from thoughtbank.index.outcomes import OUTCOMES_FILE, OutcomeStore
from thoughtbank.index.usefulness import Usefulness, estimate_usefulness
from thoughtbank.retriever.errors import InvalidRequestError, TemplateNotFoundError
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.schema import ThoughtTemplate

# Listings kept per version: the pages of a few searches and orders in use at once.
CACHED_LISTINGS = 32
# Templates shown beside one template as its nearest neighbours (near-duplicates).
NEIGHBOURS = 5


@dataclass(frozen=True)
class SortKey:
    """One way to order the list: its label and whether it shows the largest first."""

    label: str
    descending: bool
    needs_outcomes: bool = False


SORTS = {
    "": SortKey("index order", False),
    "task": SortKey("task", False),
    "length": SortKey("length", True),
    "flags": SortKey("flags", True),
    "uses": SortKey("uses", True, needs_outcomes=True),
    "lift": SortKey("lift", True, needs_outcomes=True),
}


@dataclass(frozen=True)
class ListingQuery:
    """What a list page asks for (checked by ``Catalog.page``)."""

    search: str = ""
    task: str = ""
    sort: str = ""
    descending: bool | None = None  # None: the sort key's own direction
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    templates: tuple[ThoughtTemplate, ...]
    number: int
    pages: int
    total: int
    first_row: int  # 1-based position of the page's first template in the listing


@dataclass(frozen=True)
class Neighbour:
    template: ThoughtTemplate
    similarity: float


def _search_text(template: ThoughtTemplate) -> str:
    parts = (
        template.id,
        template.task,
        template.text,
        template.source_query,
        template.pitfalls,
        *template.flags,
        *template.merged_queries,
    )
    return "\n".join(parts).lower()


class Catalog:
    """The templates of one engine, for browsing; safe to share between request threads."""

    def __init__(self, engine: RetrievalEngine) -> None:
        self.engine = engine
        self.templates: list[ThoughtTemplate] = engine.index.ordered_templates()
        self._row_of_id = {t.id: row for row, t in enumerate(self.templates)}
        self.tasks = sorted(engine.index.manifest.task_counts)
        self._texts = [_search_text(t) for t in self.templates]
        self._keys: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._outcomes = _OutcomeReader(OutcomeStore(engine.index_dir))
        self._listings = functools.lru_cache(maxsize=CACHED_LISTINGS)(self._listing)

    @property
    def usefulness(self) -> dict[str, Usefulness]:
        """Per template with outcomes, its evidence (re-read when the store changed)."""
        return self._outcomes.estimates()

    @property
    def sorts(self) -> dict[str, SortKey]:
        """The sort keys this bank offers: uses and lift once it has outcomes."""
        has_outcomes = bool(self.usefulness)
        return {name: key for name, key in SORTS.items() if has_outcomes or not key.needs_outcomes}

    def template(self, template_id: str) -> ThoughtTemplate:
        row = self._row_of_id.get(template_id)
        if row is None:
            raise TemplateNotFoundError(f"no template with id {echo(template_id)}")
        return self.templates[row]

    def page(self, query: ListingQuery) -> Page:
        """The page ``query`` asks for; ``InvalidRequestError`` for an unknown task or sort,
        ``TemplateNotFoundError`` for a page past the last."""
        if query.task and query.task not in self.tasks:
            raise InvalidRequestError(
                f"unknown task {echo(query.task)}; the index has: {', '.join(self.tasks)}"
            )
        sort = self.sorts.get(query.sort)
        if sort is None:
            offered = ", ".join(name for name in self.sorts if name)
            raise InvalidRequestError(f"unknown sort {echo(query.sort)}; use one of: {offered}")
        descending = sort.descending if query.descending is None else query.descending
        rows = self._listings(
            query.search.lower().strip(), query.task, query.sort, descending, self._outcomes.stamp
        )
        pages = max(1, math.ceil(len(rows) / query.per_page))
        if query.page > pages:
            raise TemplateNotFoundError(f"page {query.page} is past the last page, {pages}")
        start = (query.page - 1) * query.per_page
        chosen = rows[start : start + query.per_page]
        return Page(
            tuple(self.templates[r] for r in chosen), query.page, pages, len(rows), start + 1
        )

    def _listing(
        self, search: str, task: str, sort: str, descending: bool, _outcomes_stamp: object
    ) -> np.ndarray:
        """Row numbers matching every word of ``search`` and ``task``, in the sort's order
        (the outcome store's stamp is part of the cache key: new evidence, new order)."""
        rows = self._matching(search.split(), task)
        if sort:
            keys = self._sort_keys(sort)[rows]
            order = np.argsort(-keys if descending else keys, kind="stable")
            rows = rows[order]
        elif descending:
            rows = rows[::-1]
        return rows

    def _matching(self, words: Sequence[str], task: str) -> np.ndarray:
        """Rows of ``task`` (any task when empty) whose search text holds every word."""
        rows = self._task_rows(task) if task else None
        texts = self._texts
        for word in words:
            if rows is None:  # the first word scans every text; the next ones its matches
                found = [row for row, text in enumerate(texts) if word in text]
            else:
                found = [row for row in rows.tolist() if word in texts[row]]
            rows = np.asarray(found, dtype=np.int64)
        return np.arange(len(texts), dtype=np.int64) if rows is None else rows

    @functools.cached_property
    def _tasks(self) -> np.ndarray:
        return np.array([t.task for t in self.templates], dtype=object)

    def _task_rows(self, task: str) -> np.ndarray:
        return np.flatnonzero(self._tasks == task)

    def _sort_keys(self, sort: str) -> np.ndarray:
        """One number per row to sort by, computed on first use (outcome keys every time the
        store changed, which the listing cache's key already tracks)."""
        if SORTS[sort].needs_outcomes:
            return self._outcome_keys(sort)
        with self._lock:
            if sort not in self._keys:
                self._keys[sort] = self._static_keys(sort)
            return self._keys[sort]

    def _static_keys(self, sort: str) -> np.ndarray:
        rank = {task: n for n, task in enumerate(self.tasks)}
        key_of: dict[str, Callable[[ThoughtTemplate], float]] = {
            "task": lambda t: rank.get(t.task, len(rank)),
            "length": lambda t: len(t.text),
            "flags": lambda t: len(t.flags),
        }
        return np.fromiter(map(key_of[sort], self.templates), np.float64, len(self.templates))

    def _outcome_keys(self, sort: str) -> np.ndarray:
        estimates = self.usefulness
        keys = np.zeros(len(self.templates))
        for template_id, estimate in estimates.items():
            row = self._row_of_id.get(template_id)
            if row is not None:
                keys[row] = estimate.uses if sort == "uses" else estimate.lift
        return keys

    def neighbours(self, template: ThoughtTemplate) -> list[Neighbour]:
        """The templates nearest to ``template`` by their stored embeddings: near-duplicates
        show up here with a similarity close to 1."""
        index = self.engine.index
        int_id = template_int_id(template.id)
        vector = np.ascontiguousarray(index.embeddings_of([int_id]), dtype=np.float32)
        scores, ids = index.search(vector, NEIGHBOURS + 1)
        return [
            Neighbour(index.templates[int(i)], float(s))
            for s, i in zip(scores[0], ids[0], strict=True)
            if i >= 0 and int(i) != int_id
        ][:NEIGHBOURS]


class _OutcomeReader:
    """The store's usefulness estimates, read again only when its files changed."""

    def __init__(self, store: OutcomeStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._seen: tuple[float, ...] | None = None
        self._estimates: dict[str, Usefulness] = {}

    @property
    def stamp(self) -> tuple[float, ...]:
        """Modification times of the store and its write-ahead log (WAL commits touch only
        the log): what changes when an outcome is recorded."""
        path = self._store.path
        times = []
        for name in (path, path.with_name(OUTCOMES_FILE + "-wal")):
            try:
                times.append(os.stat(name).st_mtime)
            except FileNotFoundError:
                times.append(0.0)
        return tuple(times)

    def estimates(self) -> dict[str, Usefulness]:
        stamp = self.stamp
        with self._lock:
            if stamp != self._seen:
                self._seen = stamp
                self._estimates = self._read() if any(stamp) else {}
            return self._estimates

    def _read(self) -> dict[str, Usefulness]:
        return estimate_usefulness(self._store.template_uses(), self._store.overrides())


_catalogs: weakref.WeakKeyDictionary[RetrievalEngine, Catalog] = weakref.WeakKeyDictionary()
_catalogs_lock = threading.Lock()


def catalog_of(engine: RetrievalEngine) -> Catalog:
    """The catalog of ``engine``, built on first use and dropped with the engine (a reload
    brings a new engine, and with it a new catalog)."""
    with _catalogs_lock:
        catalog = _catalogs.get(engine)
        if catalog is None:
            catalog = _catalogs[engine] = Catalog(engine)
        return catalog
