"""Conversions between ``thoughtbank.v1`` messages and the project's typed objects.

The server and the client SDK both go through these functions, so a field added to the proto
is mapped in exactly one place.
"""

from __future__ import annotations

import json
from typing import Any

from thoughtbank.protos import pb2
from thoughtbank.retriever.types import (
    AugmentedPrompt,
    IndexInfo,
    RetrievalQuery,
    RetrievalResult,
    ScoredTemplate,
)
from thoughtbank.templates import SourceResponse, TemplateFields, ThoughtTemplate


def template_to_pb(template: ThoughtTemplate) -> pb2.ThoughtTemplate:
    message = pb2.ThoughtTemplate(
        id=template.id,
        task=template.task,
        text=template.text,
        source_query=template.source_query,
        source_models=list(template.source_models),
        source_query_ids=list(template.source_query_ids),
        sources=[
            pb2.SourceResponse(llm=s.llm, performance=s.performance, cost=s.cost,
                               llm_judge=s.llm_judge, query_id=s.query_id)
            for s in template.sources
        ],
        pitfalls=template.pitfalls,
        distiller=template.distiller,
        created_at=template.created_at,
        distiller_version=template.distiller_version,
        merged_queries=list(template.merged_queries),
        flags=list(template.flags),
    )
    if template.fields is not None:
        message.fields.CopyFrom(pb2.TemplateFields(
            task_summary=template.fields.task_summary,
            reasoning_steps=list(template.fields.reasoning_steps),
            answer_format=template.fields.answer_format,
        ))
    return message


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


def hit_to_pb(hit: ScoredTemplate) -> pb2.ScoredTemplate:
    return pb2.ScoredTemplate(
        template=template_to_pb(hit.template), score=hit.score, index_version=hit.index_version
    )


def hit_from_pb(message: pb2.ScoredTemplate) -> ScoredTemplate:
    return ScoredTemplate(template_from_pb(message.template), message.score, message.index_version)


def query_from_pb(message: pb2.RetrieveRequest | pb2.AugmentPromptRequest) -> RetrievalQuery:
    """The typed query of a Retrieve or AugmentPrompt request (they share these fields)."""
    return RetrievalQuery(
        query=message.query,
        k=message.k,
        task=message.task,
        task_strict=message.task_strict,
        min_score=message.min_score if message.HasField("min_score") else None,
        diversity=message.diversity,
        exclude_ids=tuple(message.exclude_ids),
        exclude_same_query=message.exclude_same_query,
        ef_search=message.ef_search if message.HasField("ef_search") else None,
        nprobe=message.nprobe if message.HasField("nprobe") else None,
    )


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


def query_to_pb(query: RetrievalQuery) -> pb2.RetrieveRequest:
    return pb2.RetrieveRequest(**_query_fields(query))


def augment_request_to_pb(
    query: RetrievalQuery, max_template_tokens: int | None = None
) -> pb2.AugmentPromptRequest:
    return pb2.AugmentPromptRequest(
        **_query_fields(query), max_template_tokens=max_template_tokens
    )


def result_to_pb(result: RetrievalResult) -> pb2.RetrieveResponse:
    return pb2.RetrieveResponse(
        hits=[hit_to_pb(h) for h in result.hits],
        index_version=result.index_version,
        predicted_task=result.predicted_task,
        predicted_task_confidence=result.predicted_task_confidence,
    )


def result_from_pb(message: pb2.RetrieveResponse) -> RetrievalResult:
    return RetrievalResult(
        hits=tuple(hit_from_pb(h) for h in message.hits),
        index_version=message.index_version,
        predicted_task=message.predicted_task,
        predicted_task_confidence=message.predicted_task_confidence,
    )


def augmented_to_pb(prompt: AugmentedPrompt) -> pb2.AugmentPromptResponse:
    return pb2.AugmentPromptResponse(
        prompt=prompt.prompt, hits=[hit_to_pb(h) for h in prompt.hits],
        index_version=prompt.index_version,
    )


def augmented_from_pb(message: pb2.AugmentPromptResponse) -> AugmentedPrompt:
    return AugmentedPrompt(
        prompt=message.prompt, hits=tuple(hit_from_pb(h) for h in message.hits),
        index_version=message.index_version,
    )


def info_to_pb(info: IndexInfo) -> pb2.GetIndexInfoResponse:
    return pb2.GetIndexInfoResponse(
        index_version=info.index_version,
        count=info.count,
        task_counts=info.task_counts,
        embedder=info.embedder,
        dimension=info.dimension,
        index_type=info.index_type,
        metric=info.metric,
        created_at=info.created_at,
        manifest_json=json.dumps(info.manifest, sort_keys=True),
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
