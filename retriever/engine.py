"""In-process retrieval over a loaded index: the semantics the server exposes over gRPC.

``TemplateRetriever`` validates requests, embeds queries in one batch, searches FAISS (with
per-task ID selectors for task filters) and applies score thresholds and exclusions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from thoughtbank.index import (
    Embedder,
    LoadedIndex,
    load_index,
    template_int_id,
    verify_embedder,
)
from thoughtbank.retriever.errors import InvalidRequestError, TemplateNotFoundError
from thoughtbank.retriever.prompt import DEFAULT_PROMPT, build_augmented_prompt
from thoughtbank.retriever.types import (
    MAX_K,
    AugmentedPrompt,
    IndexInfo,
    RetrievalQuery,
    RetrievalResult,
    ScoredTemplate,
)
from thoughtbank.templates import ThoughtTemplate
from thoughtbank.templates.selection import normalize_query

DEFAULT_MAX_QUERY_CHARS = 32_768


class TemplateRetriever:
    """Retrieval over one ``LoadedIndex`` with the embedder that built it."""

    def __init__(
        self, index: LoadedIndex, embedder: Embedder, max_query_chars: int = DEFAULT_MAX_QUERY_CHARS
    ) -> None:
        verify_embedder(index.manifest, embedder)
        self.index = index
        self.embedder = embedder
        self.max_query_chars = max_query_chars
        self._task_ids = self._ids_by_task(index)
        self._by_id = {t.id: t for t in index.templates.values()}

    @classmethod
    def open(cls, index_dir: Path, embedder: Embedder | None = None) -> TemplateRetriever:
        """Load the live version of ``index_dir`` with its own embedder unless one is given."""
        index = load_index(index_dir)
        return cls(index, embedder or Embedder(index.manifest.embedder))

    @staticmethod
    def _ids_by_task(index: LoadedIndex) -> dict[str, np.ndarray]:
        grouped: dict[str, list[int]] = {}
        for int_id, template in index.templates.items():
            grouped.setdefault(template.task, []).append(int_id)
        return {task: np.array(ids, dtype=np.int64) for task, ids in grouped.items()}

    @property
    def version(self) -> str:
        return self.index.version

    def validate(self, request: RetrievalQuery) -> None:
        """Raise ``InvalidRequestError`` saying what is wrong with ``request``."""
        if not request.query.strip():
            raise InvalidRequestError("query must not be empty")
        if len(request.query) > self.max_query_chars:
            raise InvalidRequestError(
                f"query has {len(request.query)} characters, over the limit of "
                f"{self.max_query_chars}"
            )
        if not 1 <= request.k <= MAX_K:
            raise InvalidRequestError(f"k must be between 1 and {MAX_K}, got {request.k}")
        if request.task_strict and request.task and request.task not in self._task_ids:
            raise InvalidRequestError(
                f"unknown task {request.task!r}; the index has: {', '.join(sorted(self._task_ids))}"
            )
        if request.task_strict and not request.task:
            raise InvalidRequestError("task_strict needs a task")
        if not 0.0 <= request.diversity <= 1.0:
            raise InvalidRequestError(f"diversity must be in [0, 1], got {request.diversity}")

    def retrieve(self, request: RetrievalQuery) -> RetrievalResult:
        return self.retrieve_batch([request])[0]

    def retrieve_batch(self, requests: Sequence[RetrievalQuery]) -> list[RetrievalResult]:
        """Validate all, embed all queries in one batch, then search each."""
        for request in requests:
            self.validate(request)
        vectors = self.embedder.encode([r.query for r in requests])
        return [self.search_vector(r, v) for r, v in zip(requests, vectors, strict=True)]

    def _search(self, vector: np.ndarray, k: int, task: str = "") -> list[tuple[float, int]]:
        allowed = self._task_ids[task] if task else None
        scores, ids = self.index.search(vector[None, :], k, allowed_ids=allowed)
        return [(float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def _excluded(self, request: RetrievalQuery) -> set[int]:
        excluded = {template_int_id(i) for i in request.exclude_ids}
        if request.exclude_same_query:
            own = normalize_query(request.query)
            excluded |= {i for i, t in self.index.templates.items()
                         if normalize_query(t.source_query) == own}
        return excluded

    def search_vector(self, request: RetrievalQuery, vector: np.ndarray) -> RetrievalResult:
        """Retrieve for an already embedded, validated request."""
        excluded = self._excluded(request)
        fetch = request.k + len(excluded)
        candidates: list[tuple[float, int]] = []
        if request.task in self._task_ids:
            candidates = self._search(vector, fetch, request.task)
        usable = sum(1 for _, int_id in candidates if int_id not in excluded)
        if not request.task_strict and usable < request.k:
            seen = {i for _, i in candidates}
            candidates += [c for c in self._search(vector, fetch + len(seen)) if c[1] not in seen]
        hits = []
        for score, int_id in candidates:
            if int_id in excluded or (request.min_score is not None and score < request.min_score):
                continue
            hits.append(ScoredTemplate(self.index.templates[int_id], score, self.version))
            if len(hits) == request.k:
                break
        return RetrievalResult(hits=tuple(hits), index_version=self.version)

    def augment(self, request: RetrievalQuery) -> AugmentedPrompt:
        result = self.retrieve(request)
        prompt = build_augmented_prompt(request.query, result.hits, DEFAULT_PROMPT)
        return AugmentedPrompt(prompt=prompt, hits=result.hits, index_version=self.version)

    def get_template(self, template_id: str) -> ThoughtTemplate:
        if not template_id:
            raise InvalidRequestError("id must not be empty")
        try:
            return self._by_id[template_id]
        except KeyError:
            raise TemplateNotFoundError(f"no template with id {template_id!r}") from None

    def info(self) -> IndexInfo:
        manifest = self.index.manifest
        return IndexInfo(
            index_version=manifest.version,
            count=manifest.count,
            task_counts=dict(manifest.task_counts),
            embedder=manifest.embedder,
            dimension=manifest.dimension,
            index_type=manifest.index_type,
            metric=manifest.metric,
            created_at=manifest.created_at,
            manifest=asdict(manifest),
        )
