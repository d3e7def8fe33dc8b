"""Typed records of the mining stage: what is read from logs.

The template types it writes are shared by every stage and live in ``thoughtbank.schema``; they
are re-exported here for the mining modules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

from thoughtbank.schema import SourceResponse, TemplateFields, ThoughtTemplate, template_id

__all__ = ["LogRecord", "SourceResponse", "TemplateFields", "ThoughtTemplate", "template_id"]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One scored response of one model to one query (a FusionBench log row)."""

    task_name: str
    query: str
    llm: str
    response: str
    performance: float
    query_id: str = ""
    cost: float | None = None
    llm_judge: float | None = None
    ground_truth: str = ""
    #: How the source scored the response (``em_mc``, ``GSM8K``, ``pass@1``...), "" if unknown.
    metric: str = ""

    def to_json(self) -> str:
        """The field values as a JSON array, in field order: the compact form the spool stores
        and duplicate detection hashes (``dataclasses.astuple`` deep-copies: slow)."""
        return json.dumps([getattr(self, name) for name in _LOG_RECORD_FIELDS])


_LOG_RECORD_FIELDS = tuple(f.name for f in fields(LogRecord))
