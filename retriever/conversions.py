"""The client's side of the wire: typed requests to ``thoughtbank.v1`` messages, responses back.

The server's side is ``thoughtbank.retriever.serving.conversions``; a field added to the proto is
mapped once in each direction.
"""

from __future__ import annotations

import json
from typing import Any

from thoughtbank.protos import pb2
from thoughtbank.retriever.types import (
    AugmentedPrompt,
    IndexInfo,
    NamespaceInfo,
    RetrievalQuery,
    RetrievalResult,
    ScoredTemplate,
)
from thoughtbank.schema import OutcomeRecord, SourceResponse, TemplateFields, ThoughtTemplate


def template_from_pb(message: pb2.ThoughtTemplate) -> ThoughtTemplate:
    return ThoughtTemplate(
        id=message.id,
        task=message.task,
        text=message.text,
        source_query=message.source_query,
        source_models=tuple(message.source_models),
        source_query_ids=tuple(message.source_query_ids),
        sources=tuple(
            SourceResponse(
                llm=s.llm,
                performance=s.performance,
                cost=s.cost if s.HasField("cost") else None,
                llm_judge=s.llm_judge if s.HasField("llm_judge") else None,
                query_id=s.query_id,
            )
            for s in message.sources
        ),
        fields=(
            TemplateFields(
                task_summary=message.fields.task_summary,
                reasoning_steps=tuple(message.fields.reasoning_steps),
                answer_format=message.fields.answer_format,
            )
            if message.HasField("fields")
            else None
        ),
        pitfalls=message.pitfalls,
        distiller=message.distiller,
        created_at=message.created_at,
        distiller_version=message.distiller_version,
        merged_queries=tuple(message.merged_queries),
        flags=tuple(message.flags),
    )


def hit_from_pb(message: pb2.ScoredTemplate) -> ScoredTemplate:
    return ScoredTemplate(template_from_pb(message.template), message.score, message.index_version)


def _query_fields(query: RetrievalQuery) -> dict[str, Any]:
    """The request fields Retrieve and AugmentPrompt share, from a typed query."""
    return {
        "query": query.query,
        "k": query.k,
        "task": query.task,
        "task_strict": query.task_strict,
        "min_score": query.min_score,
        "diversity": query.diversity,
        "exclude_ids": list(query.exclude_ids),
        "exclude_same_query": query.exclude_same_query,
        "ef_search": query.ef_search,
        "nprobe": query.nprobe,
    }


def outcome_to_pb(outcome: OutcomeRecord, namespace: str = "") -> pb2.RecordOutcomeRequest:
    return pb2.RecordOutcomeRequest(
        namespace=namespace,
        outcome_id=outcome.outcome_id,
        query=outcome.query,
        template_ids=list(outcome.template_ids),
        score=outcome.score,
        baseline_score=outcome.baseline_score,
        task=outcome.task,
        index_version=outcome.index_version,
        model=outcome.model,
    )


def query_to_pb(query: RetrievalQuery, namespace: str = "") -> pb2.RetrieveRequest:
    return pb2.RetrieveRequest(**_query_fields(query), namespace=namespace)


def augment_request_to_pb(
    query: RetrievalQuery, max_template_tokens: int | None = None, namespace: str = ""
) -> pb2.AugmentPromptRequest:
    return pb2.AugmentPromptRequest(
        **_query_fields(query), max_template_tokens=max_template_tokens, namespace=namespace
    )


def result_from_pb(message: pb2.RetrieveResponse) -> RetrievalResult:
    return RetrievalResult(
        hits=tuple(hit_from_pb(h) for h in message.hits),
        index_version=message.index_version,
        predicted_task=message.predicted_task,
        predicted_task_confidence=message.predicted_task_confidence,
    )


def augmented_from_pb(message: pb2.AugmentPromptResponse) -> AugmentedPrompt:
    return AugmentedPrompt(
        prompt=message.prompt,
        hits=tuple(hit_from_pb(h) for h in message.hits),
        index_version=message.index_version,
    )


def info_from_pb(message: pb2.GetIndexInfoResponse) -> IndexInfo:
    return IndexInfo(
        index_version=message.index_version,
        count=message.count,
        task_counts=dict(message.task_counts),
        embedder=message.embedder,
        dimension=message.dimension,
        index_type=message.index_type,
        metric=message.metric,
        created_at=message.created_at,
        manifest=json.loads(message.manifest_json) if message.manifest_json else {},
    )


def namespaces_from_pb(message: pb2.ListNamespacesResponse) -> list[NamespaceInfo]:
    return [NamespaceInfo(n.name, n.index_version, n.count) for n in message.namespaces]
