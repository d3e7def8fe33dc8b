"""The server's side of the wire: ``thoughtbank.v1`` requests to typed queries, results back.

The client's side is ``thoughtbank.retriever.conversions``.
"""

from __future__ import annotations

import json

from thoughtbank.protos import pb2
from thoughtbank.retriever.types import (
    AugmentedPrompt,
    IndexInfo,
    RetrievalQuery,
    RetrievalResult,
    ScoredTemplate,
)
from thoughtbank.schema import ThoughtTemplate


def template_to_pb(template: ThoughtTemplate) -> pb2.ThoughtTemplate:
    message = pb2.ThoughtTemplate(
        id=template.id,
        task=template.task,
        text=template.text,
        source_query=template.source_query,
        source_models=list(template.source_models),
        source_query_ids=list(template.source_query_ids),
        sources=[
            pb2.SourceResponse(
                llm=s.llm,
                performance=s.performance,
                cost=s.cost,
                llm_judge=s.llm_judge,
                query_id=s.query_id,
            )
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
        message.fields.CopyFrom(
            pb2.TemplateFields(
                task_summary=template.fields.task_summary,
                reasoning_steps=list(template.fields.reasoning_steps),
                answer_format=template.fields.answer_format,
            )
        )
    return message


def hit_to_pb(hit: ScoredTemplate) -> pb2.ScoredTemplate:
    return pb2.ScoredTemplate(
        template=template_to_pb(hit.template), score=hit.score, index_version=hit.index_version
    )


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


def result_to_pb(result: RetrievalResult) -> pb2.RetrieveResponse:
    return pb2.RetrieveResponse(
        hits=[hit_to_pb(h) for h in result.hits],
        index_version=result.index_version,
        predicted_task=result.predicted_task,
        predicted_task_confidence=result.predicted_task_confidence,
    )


def augmented_to_pb(prompt: AugmentedPrompt) -> pb2.AugmentPromptResponse:
    return pb2.AugmentPromptResponse(
        prompt=prompt.prompt,
        hits=[hit_to_pb(h) for h in prompt.hits],
        index_version=prompt.index_version,
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
