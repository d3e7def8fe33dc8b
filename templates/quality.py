"""The template quality battery: how far mined templates are from ones worth injecting.

No LLM is needed. The logs give each query's ground truth, options and metric; templates join
their queries by ``source_query_ids``, else ``source_query`` and ``merged_queries``. Per task
(and overall) it measures the share of templates that leak the answer (the leakage guard),
carry boilerplate (the task's learned boilerplate or well-known prompt phrases), put an
option's text in the task summary, have a step with no content words, state another answer
format than the task's, or copy more than the guard's span of query words; plus mean steps and
length.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thoughtbank.normalize import normalize_query
from thoughtbank.templates.answer_format import classify_answer_format
from thoughtbank.templates.leakage import (
    LeakageGuard,
    content_words,
    option_pattern,
    without_symbols,
)
from thoughtbank.templates.query_parts import split_query
from thoughtbank.templates.readers import RejectSink, check_log_paths, iter_log_records
from thoughtbank.templates.schema import ThoughtTemplate
from thoughtbank.templates.spool import GroupSpool
from thoughtbank.templates.store import read_templates
from thoughtbank.templates.task_profile import TaskProfile, learn_task_profiles

SAMPLES_PER_TASK = 3
RATES = (
    "leak_rate",
    "boilerplate_rate",
    "option_in_summary_rate",
    "degenerate_step_rate",
    "wrong_answer_format_rate",
    "copied_query_span_rate",
)
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")


@dataclass(frozen=True, slots=True)
class LoggedQuery:
    """What the logs say about one query."""

    task: str
    query: str
    ground_truth: str


@dataclass(frozen=True)
class LogTruth:
    """Queries by id and by (task, normalized query), and each task's profile."""

    by_id: dict[str, LoggedQuery]
    by_text: dict[tuple[str, str], LoggedQuery]
    profiles: dict[str, TaskProfile]

    def queries_of(self, template: ThoughtTemplate) -> list[LoggedQuery]:
        found = [self.by_id[i] for i in template.source_query_ids if i in self.by_id]
        if not found:
            texts = (template.source_query, *template.merged_queries)
            found = [
                q
                for text in texts
                if (q := self.by_text.get((template.task, normalize_query(text))))
            ]
        return list({(q.task, q.query): q for q in found}.values())


def read_log_truth(log_paths: Sequence[Path], spool_dir: Path | None = None) -> LogTruth:
    """Read the logs once: every query's ground truth and every task's profile."""
    check_log_paths(log_paths)
    by_id: dict[str, LoggedQuery] = {}
    by_text: dict[tuple[str, str], LoggedQuery] = {}
    with GroupSpool(spool_dir) as spool:
        spool.add_all(iter_log_records(log_paths, RejectSink()))

        def groups() -> Iterable[Any]:
            for group in spool.groups():
                truth = next((r.ground_truth for r in group.records if r.ground_truth), "")
                # The log's own text: the group's is folded, which loses line layouts.
                logged = LoggedQuery(group.task, group.records[0].query, truth)
                by_text[group.key] = logged
                by_id.update({r.query_id: logged for r in group.records if r.query_id})
                yield group

        profiles = learn_task_profiles(groups())
    return LogTruth(by_id, by_text, profiles)


@dataclass(frozen=True, slots=True)
class TemplateChecks:
    """The battery's verdicts on one template."""

    leak: bool
    boilerplate: bool
    option_in_summary: bool
    degenerate_step: bool
    wrong_answer_format: bool
    copied_query_span: bool
    steps: int
    chars: int


def is_degenerate_step(step: str) -> bool:
    """A step left with no content word: placeholders, symbols, numbers, operators, stop words."""
    return not content_words(_LATEX_COMMAND.sub(" ", step))


def _option_in_summary(summary: str, query: str) -> bool:
    parts = split_query(query)
    patterns = (option_pattern(text, parts.stem) for text in parts.options.values())
    summary = without_symbols(summary)
    return any(p is not None and re.search(p, summary, re.IGNORECASE) for p in patterns)


def check_template(
    template: ThoughtTemplate,
    queries: Sequence[LoggedQuery],
    profile: TaskProfile,
    guard: LeakageGuard,
) -> TemplateChecks:
    """Every check of the battery on ``template``, whose queries are ``queries``."""
    summary, steps, answer_format = (
        (
            template.fields.task_summary,
            template.fields.reasoning_steps,
            template.fields.answer_format,
        )
        if template.fields
        else (template.text, (), "")
    )
    written = "\n".join([summary, *steps, answer_format, template.pitfalls])
    leaks = [leak for q in queries for leak in guard.find(written, q.query, q.ground_truth)]
    return TemplateChecks(
        leak=any(leak.kind != "query span" for leak in leaks),
        boilerplate=bool(profile.boilerplate.find("\n".join([summary, *steps]))),
        option_in_summary=any(_option_in_summary(summary, q.query) for q in queries),
        degenerate_step=any(is_degenerate_step(step) for step in steps),
        wrong_answer_format=classify_answer_format(answer_format) is not profile.answer_format,
        copied_query_span=any(leak.kind == "query span" for leak in leaks),
        steps=len(steps),
        chars=len(template.text),
    )


@dataclass
class QualityFigures:
    """Counts over a set of templates; rates are shares of ``templates``."""

    templates: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RATES, 0))
    steps: int = 0
    chars: int = 0

    def add(self, checks: TemplateChecks) -> None:
        self.templates += 1
        for rate in RATES:
            self.counts[rate] += getattr(checks, rate.removesuffix("_rate"))
        self.steps += checks.steps
        self.chars += checks.chars

    def to_dict(self) -> dict[str, float | int]:
        total = max(self.templates, 1)
        figures: dict[str, float | int] = {"templates": self.templates}
        figures |= {rate: self.counts[rate] / total for rate in RATES}
        figures |= {"mean_steps": self.steps / total, "mean_chars": self.chars / total}
        return figures


@dataclass
class QualityReport:
    overall: QualityFigures = field(default_factory=QualityFigures)
    per_task: dict[str, QualityFigures] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)
    unmatched_templates: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "per_task": {task: f.to_dict() for task, f in sorted(self.per_task.items())},
            "unmatched_templates": self.unmatched_templates,
            "samples": self.samples,
        }


def evaluate_templates(
    templates: Iterable[ThoughtTemplate], truth: LogTruth, guard: LeakageGuard = LeakageGuard()
) -> QualityReport:
    """Run the battery over ``templates``; those whose queries the logs lack are only counted."""
    report = QualityReport()
    by_task: dict[str, QualityFigures] = defaultdict(QualityFigures)
    for template in sorted(templates, key=lambda t: (t.task, t.id)):
        queries = truth.queries_of(template)
        profile = truth.profiles.get(template.task)
        if not queries or profile is None:
            report.unmatched_templates += 1
            continue
        checks = check_template(template, queries, profile, guard)
        report.overall.add(checks)
        by_task[template.task].add(checks)
        samples = report.samples.setdefault(template.task, [])
        if len(samples) < SAMPLES_PER_TASK:
            samples.append(template.text)
    report.per_task = dict(by_task)
    return report


def evaluate_template_file(
    templates_path: Path, log_paths: Sequence[Path], guard: LeakageGuard = LeakageGuard()
) -> QualityReport:
    return evaluate_templates(read_templates(templates_path), read_log_truth(log_paths), guard)


_COLUMNS = (
    ("templates", "n", "{:>6}"),
    ("leak_rate", "leak", "{:>6.1%}"),
    ("boilerplate_rate", "boiler", "{:>6.1%}"),
    ("option_in_summary_rate", "opt-sum", "{:>7.1%}"),
    ("degenerate_step_rate", "degen", "{:>6.1%}"),
    ("wrong_answer_format_rate", "format", "{:>6.1%}"),
    ("copied_query_span_rate", "copy", "{:>6.1%}"),
    ("mean_steps", "steps", "{:>5.1f}"),
    ("mean_chars", "chars", "{:>6.0f}"),
)


def format_quality_table(report: QualityReport, samples: bool = True) -> str:
    """The report as a fixed-width table, per task then overall, and sample templates."""
    width = max([len("overall"), *map(len, report.per_task)])
    header = f"{'task':<{width}} " + " ".join(
        f"{label:>{len(fmt.format(0 if key == 'templates' else 0.0))}}"
        for key, label, fmt in _COLUMNS
    )
    rows = [header]
    named = [*sorted(report.per_task.items()), ("overall", report.overall)]
    for name, figures in named:
        values = figures.to_dict()
        rows.append(
            f"{name:<{width}} " + " ".join(fmt.format(values[key]) for key, _, fmt in _COLUMNS)
        )
    if report.unmatched_templates:
        rows.append(
            f"({report.unmatched_templates} templates whose queries the logs lack were skipped)"
        )
    if samples:
        for task, texts in sorted(report.samples.items()):
            rows.append(f"\n== samples of {task}")
            rows.extend(f"-- \n{text}" for text in texts)
    return "\n".join(rows)
