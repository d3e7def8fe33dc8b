"""The server's side of the wire: ``thoughtbank.v1`` requests to typed queries, results back.

The client's side is ``thoughtbank.retriever.conversions``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass

from thoughtbank.protos import pb2
from thoughtbank.retriever.errors import InvalidRequestError
from thoughtbank.retriever.types import (
    MAX_K,
    AugmentedPrompt,
    IndexInfo,
    NamespaceInfo,
    RetrievalQuery,
    RetrievalResult,
    ScoredTemplate,
)
from thoughtbank.schema import OutcomeRecord, ThoughtTemplate


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


def template_pb_bytes(template: ThoughtTemplate) -> int:
    """The bytes ``template`` takes on the wire, without its own field framing."""
    return template_to_pb(template).ByteSize()


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


def outcome_from_pb(message: pb2.RecordOutcomeRequest, where: str = "") -> OutcomeRecord:
    """The outcome of a RecordOutcome request (checked by the engine); ``InvalidRequestError``
    when its required score is missing (``where``: its place in a batch)."""
    if not message.HasField("score"):
        raise InvalidRequestError(f"{where}score is required: the answer's score in [0, 1]")
    return OutcomeRecord(
        outcome_id=message.outcome_id,
        template_ids=tuple(message.template_ids),
        score=message.score,
        query=message.query,
        baseline_score=message.baseline_score if message.HasField("baseline_score") else None,
        task=message.task,
        index_version=message.index_version,
        model=message.model,
    )


def result_to_pb(result: RetrievalResult) -> pb2.RetrieveResponse:
    return pb2.RetrieveResponse(
        hits=[hit_to_pb(h) for h in result.hits],
        index_version=result.index_version,
        predicted_task=result.predicted_task,
        predicted_task_confidence=result.predicted_task_confidence,
    )


# A length-delimited field costs a tag (1 byte) and a length varint (at most 5) beside its payload.
FIELD_FRAMING_BYTES = 6


@dataclass(frozen=True)
class ResponseBound:
    """The most bytes Retrieve answers from one index version can take on the wire.

    Any k hits take at most what the k largest hits of the index take, so a request can be
    refused for its size before any work, and one admitted can never fail to be sent.
    """

    header_bytes: int  # an answer without hits, with the longest task name predicted
    largest_hits_bytes: tuple[int, ...]  # [n]: the n largest hits together, framed

    @classmethod
    def of(cls, template_sizes: Iterable[int], version: str, tasks: Iterable[str]) -> ResponseBound:
        """The bound for an index whose templates serialize to ``template_sizes`` bytes."""
        envelope = pb2.ScoredTemplate(score=1.0, index_version=version).ByteSize()
        hit_sizes = sorted(
            (
                size + FIELD_FRAMING_BYTES + envelope + FIELD_FRAMING_BYTES
                for size in template_sizes
            ),
            reverse=True,
        )[:MAX_K]
        header = pb2.RetrieveResponse(
            index_version=version,
            predicted_task=max(tasks, key=len, default=""),
            predicted_task_confidence=1.0,
        )
        return cls(
            header.ByteSize() + FIELD_FRAMING_BYTES,
            tuple(itertools.accumulate(hit_sizes, initial=0)),
        )

    def answers_bytes(self, ks: Iterable[int]) -> int:
        """Bound of the answers to requests asking for these k (one answer per request)."""
        most = len(self.largest_hits_bytes) - 1
        return sum(self.header_bytes + self.largest_hits_bytes[min(k, most)] for k in ks)


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


def namespace_to_pb(info: NamespaceInfo) -> pb2.NamespaceInfo:
    return pb2.NamespaceInfo(name=info.name, index_version=info.index_version, count=info.count)
