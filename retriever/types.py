"""Typed requests and results of retrieval, shared by the in-process engine, server and client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from thoughtbank.schema import ThoughtTemplate

MAX_K = 100
DEFAULT_K = 3


@dataclass(frozen=True)
class RetrievalQuery:
    """One retrieval request; field names match the proto's ``RetrieveRequest``."""

    query: str
    k: int = DEFAULT_K
    task: str = ""
    task_strict: bool = False
    min_score: float | None = None
    diversity: float = 0.0
    exclude_ids: tuple[str, ...] = ()
    exclude_same_query: bool = False
    ef_search: int | None = None
    nprobe: int | None = None


@dataclass(frozen=True)
class ScoredTemplate:
    template: ThoughtTemplate
    score: float
    index_version: str


@dataclass(frozen=True)
class RetrievalResult:
    hits: tuple[ScoredTemplate, ...]
    index_version: str
    predicted_task: str = ""
    predicted_task_confidence: float = 0.0


@dataclass(frozen=True)
class AugmentedPrompt:
    prompt: str
    hits: tuple[ScoredTemplate, ...]
    index_version: str


@dataclass(frozen=True)
class IndexInfo:
    index_version: str
    count: int
    task_counts: dict[str, int]
    embedder: str
    dimension: int
    index_type: str
    metric: str
    created_at: str
    manifest: dict[str, Any] = field(default_factory=dict)
