"""Typed requests and results of retrieval, shared by the in-process engine, server and client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from thoughtbank.schema import ThoughtTemplate

MAX_K = 100
DEFAULT_K = 3
# Per-request work bounds, checked before any work: each id excluded and each HNSW candidate
# costs search work, so neither may grow with what a client sends.
MAX_EXCLUDE_IDS = 1_000
MAX_EF_SEARCH = 4_096
# The namespace of a request that names none, and of a server started with one --index.
DEFAULT_NAMESPACE = "default"
# Largest answer a server sends by default and the SDK accepts (gRPC's own default is 4 MiB).
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024


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


@dataclass(frozen=True)
class NamespaceInfo:
    """One namespace a server holds: its live version ('' while loading) and template count."""

    name: str
    index_version: str
    count: int
