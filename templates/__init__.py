"""Mining stage: FusionBench-schema logs -> selected responses -> thought templates (JSONL)."""

from thoughtbank.templates.distill import Distiller, ExtractiveDistiller
from thoughtbank.templates.job import MiningOptions, MiningSummary, mine_templates
from thoughtbank.templates.readers import RejectSink, iter_log_records
from thoughtbank.templates.schema import (
    LogRecord,
    SourceResponse,
    TemplateFields,
    ThoughtTemplate,
    template_id,
)
from thoughtbank.templates.selection import Strategy, select_top_responses
from thoughtbank.templates.store import read_templates, write_templates

__all__ = [
    "Distiller",
    "ExtractiveDistiller",
    "LogRecord",
    "MiningOptions",
    "MiningSummary",
    "RejectSink",
    "SourceResponse",
    "Strategy",
    "TemplateFields",
    "ThoughtTemplate",
    "iter_log_records",
    "mine_templates",
    "read_templates",
    "select_top_responses",
    "template_id",
    "write_templates",
]
