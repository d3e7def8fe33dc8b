"""Mining stage: FusionBench-schema logs -> selected responses -> thought templates (JSONL).

The LLM distiller lives in ``thoughtbank.templates.chat`` (imported on demand: it pulls in
langchain-core).
"""

from thoughtbank.templates.distill import (
    Distillation,
    Distiller,
    DistillRequest,
    ExtractiveDistiller,
    LLMUsage,
)
from thoughtbank.templates.job import LeakagePolicy, MiningOptions, MiningSummary, mine_templates
from thoughtbank.templates.leakage import LeakageGuard
from thoughtbank.templates.merge import EmbedFunction, merge_near_duplicates
from thoughtbank.templates.readers import RejectSink, iter_log_records
from thoughtbank.templates.schema import (
    LogRecord,
    SourceResponse,
    TemplateFields,
    ThoughtTemplate,
    template_id,
)
from thoughtbank.templates.selection import SelectionRules, Strategy, select_top_responses
from thoughtbank.templates.store import read_templates, write_templates

__all__ = [
    "DistillRequest",
    "Distillation",
    "Distiller",
    "EmbedFunction",
    "ExtractiveDistiller",
    "LLMUsage",
    "LeakageGuard",
    "LeakagePolicy",
    "LogRecord",
    "MiningOptions",
    "MiningSummary",
    "RejectSink",
    "SelectionRules",
    "SourceResponse",
    "Strategy",
    "TemplateFields",
    "ThoughtTemplate",
    "iter_log_records",
    "merge_near_duplicates",
    "mine_templates",
    "read_templates",
    "select_top_responses",
    "template_id",
    "write_templates",
]
