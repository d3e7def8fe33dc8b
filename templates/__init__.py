"""Mining stage: FusionBench-schema logs -> selected responses -> thought templates (JSONL).

Names load on first use, so importing one module (the templates JSONL store, say) does not pull
in the mining job's readers (pyarrow, tqdm); the LLM distiller is ``thoughtbank.templates.chat``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thoughtbank.schema import SourceResponse, TemplateFields, ThoughtTemplate, template_id
    from thoughtbank.templates.distill import (
        Distillation,
        Distiller,
        DistillRequest,
        ExtractiveDistiller,
        LLMUsage,
    )
    from thoughtbank.templates.distiller_spec import DistillerSpec
    from thoughtbank.templates.job import (
        DistillEngine,
        LeakagePolicy,
        LocalEngine,
        MiningOptions,
        MiningSummary,
        mine_templates,
    )
    from thoughtbank.templates.leakage import LeakageGuard
    from thoughtbank.templates.merge import EmbedFunction, merge_near_duplicates
    from thoughtbank.templates.readers import RejectSink, iter_log_records
    from thoughtbank.templates.schema import LogRecord
    from thoughtbank.templates.selection import SelectionRules, Strategy, select_top_responses
    from thoughtbank.templates.store import read_templates, write_templates

_MODULE_OF = {
    "Distillation": "thoughtbank.templates.distill",
    "Distiller": "thoughtbank.templates.distill",
    "DistillRequest": "thoughtbank.templates.distill",
    "ExtractiveDistiller": "thoughtbank.templates.distill",
    "LLMUsage": "thoughtbank.templates.distill",
    "DistillerSpec": "thoughtbank.templates.distiller_spec",
    "DistillEngine": "thoughtbank.templates.job",
    "LocalEngine": "thoughtbank.templates.job",
    "LeakagePolicy": "thoughtbank.templates.job",
    "MiningOptions": "thoughtbank.templates.job",
    "MiningSummary": "thoughtbank.templates.job",
    "mine_templates": "thoughtbank.templates.job",
    "LeakageGuard": "thoughtbank.templates.leakage",
    "EmbedFunction": "thoughtbank.templates.merge",
    "merge_near_duplicates": "thoughtbank.templates.merge",
    "RejectSink": "thoughtbank.templates.readers",
    "iter_log_records": "thoughtbank.templates.readers",
    "LogRecord": "thoughtbank.templates.schema",
    "SourceResponse": "thoughtbank.schema",
    "TemplateFields": "thoughtbank.schema",
    "ThoughtTemplate": "thoughtbank.schema",
    "template_id": "thoughtbank.schema",
    "SelectionRules": "thoughtbank.templates.selection",
    "Strategy": "thoughtbank.templates.selection",
    "select_top_responses": "thoughtbank.templates.selection",
    "read_templates": "thoughtbank.templates.store",
    "write_templates": "thoughtbank.templates.store",
}

__all__ = [
    "DistillEngine",
    "DistillRequest",
    "Distillation",
    "Distiller",
    "DistillerSpec",
    "EmbedFunction",
    "ExtractiveDistiller",
    "LLMUsage",
    "LeakageGuard",
    "LeakagePolicy",
    "LocalEngine",
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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
