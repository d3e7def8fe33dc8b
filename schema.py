"""Typed templates every stage shares: written by mining, stored in the index, served, returned
to clients; and the outcomes clients report back about them.

``ThoughtTemplate`` uses the field names of the proto's ``ThoughtTemplate`` so that the templates
JSONL, the index artifact and the gRPC API all speak the same vocabulary. This module imports only
the standard library, so the client SDK can use it without the engine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _texts(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{name} must be a list of strings")
    return tuple(value)


@functools.lru_cache(maxsize=4096)
def _shared_models(models: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple for each set of source models: a bank repeats a few sets in every template."""
    return tuple(sys.intern(m) for m in models)


def _number(value: Any, name: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


@dataclass(frozen=True, slots=True)
class SourceResponse:
    """Provenance of one response a template was distilled from."""

    llm: str
    performance: float
    cost: float | None = None
    llm_judge: float | None = None
    query_id: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceResponse:
        """Tolerant of keys added by later versions: unknown keys are ignored."""
        if not isinstance(data, dict):
            raise TypeError(f"a source response must be an object, got {type(data).__name__}")
        return cls(
            llm=_text(data.get("llm"), "sources.llm"),
            performance=_number(data.get("performance"), "sources.performance") or 0.0,
            cost=_number(data.get("cost"), "sources.cost", optional=True),
            llm_judge=_number(data.get("llm_judge"), "sources.llm_judge", optional=True),
            query_id=_text(data.get("query_id", ""), "sources.query_id"),
        )


@dataclass(frozen=True, slots=True)
class TemplateFields:
    """FusionFactory's three parts of a thought template."""

    task_summary: str
    reasoning_steps: tuple[str, ...]
    answer_format: str

    def render(self) -> str:
        """The text placed in prompts: summary, numbered steps, answer format."""
        steps = "\n".join(f"{i}. {step}" for i, step in enumerate(self.reasoning_steps, 1))
        return (
            f"Task: {self.task_summary}\n"
            f"Reasoning steps:\n{steps}\n"
            f"Answer format: {self.answer_format}"
        )

    def map_texts(self, change: Callable[[str], str]) -> TemplateFields:
        """These fields with ``change`` applied to each text (summary, every step, format)."""
        return TemplateFields(
            task_summary=change(self.task_summary),
            reasoning_steps=tuple(change(step) for step in self.reasoning_steps),
            answer_format=change(self.answer_format),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TemplateFields:
        if not isinstance(data, dict):
            raise TypeError(f"fields must be an object, got {type(data).__name__}")
        return cls(
            task_summary=_text(data.get("task_summary"), "fields.task_summary"),
            reasoning_steps=_texts(data.get("reasoning_steps"), "fields.reasoning_steps"),
            answer_format=_text(data.get("answer_format"), "fields.answer_format"),
        )


@dataclass(frozen=True, slots=True)
class ThoughtTemplate:
    """A distilled, query-independent reasoning template with its provenance.

    ``merged_queries`` are the source queries of near-duplicate templates merged into this one
    (their responses are in ``sources``); ``flags`` name problems found but kept, such as a
    leakage the re-ask did not remove.
    """

    id: str
    task: str
    text: str
    source_query: str
    source_models: tuple[str, ...]
    source_query_ids: tuple[str, ...] = ()
    sources: tuple[SourceResponse, ...] = ()
    fields: TemplateFields | None = None
    pitfalls: str = ""
    distiller: str = ""
    distiller_version: str = ""
    created_at: str = ""
    merged_queries: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; tuples become lists.

        Built field by field: ``dataclasses.asdict`` deep-copies recursively and was most of the
        time of large index builds, which write every template.
        """
        fields_dict = (
            None
            if self.fields is None
            else {
                "task_summary": self.fields.task_summary,
                "reasoning_steps": list(self.fields.reasoning_steps),
                "answer_format": self.fields.answer_format,
            }
        )
        return {
            "id": self.id,
            "task": self.task,
            "text": self.text,
            "source_query": self.source_query,
            "source_models": list(self.source_models),
            "source_query_ids": list(self.source_query_ids),
            "sources": [
                {
                    "llm": s.llm,
                    "performance": s.performance,
                    "cost": s.cost,
                    "llm_judge": s.llm_judge,
                    "query_id": s.query_id,
                }
                for s in self.sources
            ],
            "fields": fields_dict,
            "pitfalls": self.pitfalls,
            "distiller": self.distiller,
            "distiller_version": self.distiller_version,
            "created_at": self.created_at,
            "merged_queries": list(self.merged_queries),
            "flags": list(self.flags),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThoughtTemplate:
        """Read a template written by this or an earlier version (missing fields get defaults)."""
        fields_data = data.get("fields")
        sources = data.get("sources", [])
        if not isinstance(sources, list):
            raise TypeError(f"sources must be a list, got {type(sources).__name__}")
        return cls(
            id=_text(data["id"], "id"),
            # Tasks and model sets repeat in every template: one object each, not one per line.
            task=sys.intern(_text(data["task"], "task")),
            text=_text(data["text"], "text"),
            source_query=_text(data["source_query"], "source_query"),
            source_models=_shared_models(_texts(data.get("source_models", []), "source_models")),
            source_query_ids=_texts(data.get("source_query_ids", []), "source_query_ids"),
            sources=tuple(SourceResponse.from_dict(s) for s in sources),
            fields=TemplateFields.from_dict(fields_data) if fields_data else None,
            pitfalls=_text(data.get("pitfalls", ""), "pitfalls"),
            distiller=_text(data.get("distiller", ""), "distiller"),
            distiller_version=_text(data.get("distiller_version", ""), "distiller_version"),
            created_at=_text(data.get("created_at", ""), "created_at"),
            merged_queries=_texts(data.get("merged_queries", []), "merged_queries"),
            flags=_texts(data.get("flags", []), "flags"),
        )

    @classmethod
    def from_json(cls, line: str) -> ThoughtTemplate:
        return cls.from_dict(json.loads(line))


def template_id(task: str, source_query: str, text: str, source_models: tuple[str, ...]) -> str:
    """Stable content hash: the same inputs give the same id in every run (created_at excluded)."""
    payload = json.dumps([task, source_query, text, sorted(source_models)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


MAX_TEMPLATES_PER_OUTCOME = 100
MAX_OUTCOME_TEXT_CHARS = 32_768


class OutcomeError(ValueError):
    """An outcome that cannot be recorded; the message names the field and why."""


@dataclass(frozen=True)
class OutcomeRecord:
    """One answer's score, with the templates that were in its prompt."""

    outcome_id: str  # the caller's idempotency key: a retry with the same id is not counted
    template_ids: tuple[str, ...]
    score: float  # in [0, 1]
    query: str = ""
    baseline_score: float | None = None  # the same query answered without templates
    task: str = ""
    index_version: str = ""
    model: str = ""  # the LLM that answered

    def check(self) -> None:
        """Raise ``OutcomeError`` naming the first field that is missing or out of range."""
        if not self.outcome_id:
            raise OutcomeError("outcome_id is required")
        if not self.template_ids:
            raise OutcomeError("template_ids is empty: name the templates that were in the prompt")
        if len(self.template_ids) > MAX_TEMPLATES_PER_OUTCOME:
            raise OutcomeError(
                f"template_ids holds {len(self.template_ids)} ids, at most "
                f"{MAX_TEMPLATES_PER_OUTCOME}"
            )
        _check_score("score", self.score)
        if self.baseline_score is not None:
            _check_score("baseline_score", self.baseline_score)
        texts = {
            "outcome_id": self.outcome_id,
            "query": self.query,
            "task": self.task,
            "index_version": self.index_version,
            "model": self.model,
        }
        texts.update({f"template_ids[{n}]": t for n, t in enumerate(self.template_ids)})
        for field, text in texts.items():
            if len(text) > MAX_OUTCOME_TEXT_CHARS:
                raise OutcomeError(
                    f"{field} is {len(text)} characters, at most {MAX_OUTCOME_TEXT_CHARS}"
                )
        if any(not t for t in self.template_ids):
            raise OutcomeError("template_ids holds an empty id")


def _check_score(field: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise OutcomeError(f"{field} must be a number in [0, 1], not {value!r}")
