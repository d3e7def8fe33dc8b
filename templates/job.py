"""The mining job: logs -> groups -> selected responses -> templates, durable and resumable.

Every finished group is appended to a journal (``OUT.journal``) as one JSON line, in the order
groups finish, so a killed job loses nothing it finished; ``resume=True`` skips journaled groups.
The final output is rebuilt from the journal and sorted, so the same logs and options give the
same file whatever the order groups finished in.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from thoughtbank.templates.distill import Distiller
from thoughtbank.templates.readers import RejectSink, iter_log_records
from thoughtbank.templates.schema import LogRecord, SourceResponse, ThoughtTemplate, template_id
from thoughtbank.templates.selection import (
    QueryGroup,
    Strategy,
    group_by_query,
    select_top_responses,
)
from thoughtbank.templates.store import write_templates

JOURNAL_SUFFIX = ".journal"


@dataclass(frozen=True)
class MiningOptions:
    strategy: Strategy = Strategy.FUSION
    top_n: int = 3
    min_performance: float | None = None
    allow_models: frozenset[str] | None = None
    deny_models: frozenset[str] = frozenset()
    workers: int = 1
    resume: bool = False
    column_map: dict[str, str] | None = None
    rejects_path: Path | None = None


@dataclass
class MiningSummary:
    """What the job did; printed at the end of ``thoughtbank mine``."""

    rows_read: int = 0
    rows_rejected: int = 0
    groups: int = 0
    groups_without_eligible_response: int = 0
    groups_resumed: int = 0
    templates: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "failures"}


def group_key(group: QueryGroup) -> str:
    """Stable id of a group, used by the journal to recognise finished work."""
    task, query = group.key
    return hashlib.sha256(f"{task}\x00{query}".encode()).hexdigest()[:20]


def journal_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + JOURNAL_SUFFIX)


class Journal:
    """Append-only JSON-lines log of finished groups, safe against kill -9 at any point."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = self._load() if resume else {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a" if resume else "w", encoding="utf-8")

    def _load(self) -> dict[str, dict[str, Any]]:
        """Read finished entries and cut a torn last line (a write interrupted by a kill)."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        intact = data[: data.rfind(b"\n") + 1]
        if len(intact) != len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(len(intact))
        entries = {}
        for line in intact.decode("utf-8").splitlines():
            entry = json.loads(line)
            if entry["status"] != "failed":
                entries[entry["group"]] = entry
        return entries

    def append(self, entry: dict[str, Any]) -> None:
        """One write of one whole line, flushed and fsynced before the group counts as done."""
        self._handle.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        if entry["status"] != "failed":
            self.entries[entry["group"]] = entry

    def templates(self) -> list[ThoughtTemplate]:
        found = (e["template"] for e in self.entries.values() if e["status"] == "ok")
        return sorted((ThoughtTemplate.from_dict(t) for t in found), key=lambda t: (t.task, t.id))

    def close(self) -> None:
        self._handle.close()


def build_template(
    group: QueryGroup, selected: list[LogRecord], distiller: Distiller
) -> ThoughtTemplate:
    """Distil ``selected`` and attach the provenance of every response used."""
    fields = distiller.distill(group.task, group.query, selected)
    text = fields.render()
    models = tuple(dict.fromkeys(r.llm for r in selected))
    return ThoughtTemplate(
        id=template_id(group.task, group.query, text, models),
        task=group.task,
        text=text,
        source_query=group.query,
        source_models=models,
        source_query_ids=tuple(sorted({r.query_id for r in group.records if r.query_id})),
        sources=tuple(
            SourceResponse(r.llm, r.performance, r.cost, r.llm_judge, r.query_id) for r in selected
        ),
        fields=fields,
        distiller=distiller.name,
        distiller_version=distiller.version,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _mine_group(group: QueryGroup, distiller: Distiller, options: MiningOptions) -> dict[str, Any]:
    selected = select_top_responses(
        group, options.strategy, options.top_n, options.min_performance,
        options.allow_models, options.deny_models,
    )
    if not selected:
        return {"status": "skipped", "reason": "no eligible response"}
    return {"status": "ok", "template": build_template(group, selected, distiller).to_dict()}


def mine_templates(
    log_paths: Iterable[Path],
    out_path: Path,
    distiller: Distiller,
    options: MiningOptions | None = None,
    on_group_done: Callable[[], None] | None = None,
) -> MiningSummary:
    """Run the whole job and write the templates JSONL to ``out_path``."""
    options = options or MiningOptions()
    out_path = Path(out_path)
    summary = MiningSummary()
    rejects = RejectSink(options.rejects_path or out_path.with_name(out_path.name + ".rejects"))
    records = list(iter_log_records([Path(p) for p in log_paths], rejects, options.column_map))
    rejects.close()
    summary.rows_read = len(records) + rejects.count
    summary.rows_rejected = rejects.count
    groups = group_by_query(records)
    summary.groups = len(groups)

    journal = Journal(journal_path(out_path), options.resume)
    pending = [g for g in groups if group_key(g) not in journal.entries]
    summary.groups_resumed = len(groups) - len(pending)
    try:
        with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
            futures = {pool.submit(_mine_group, g, distiller, options): g for g in pending}
            for future in as_completed(futures):
                key = group_key(futures[future])
                try:
                    entry = future.result()
                except Exception as exc:  # a failed group is recorded and retried next run
                    entry = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                    summary.failures.append(f"{futures[future].key}: {entry['error']}")
                journal.append({"group": key, **entry})
                if on_group_done:
                    on_group_done()
    finally:
        journal.close()

    statuses = [e["status"] for e in journal.entries.values()]
    summary.groups_without_eligible_response = statuses.count("skipped")
    summary.failed = len(summary.failures)
    summary.templates = write_templates(out_path, journal.templates())
    return summary
