"""``thoughtbank feedback``: what outcomes say of each template, importing outcomes offline, and
an operator's retire and restore.

All of it works on the index folder's outcome store, which running servers read every
``--feedback-interval`` seconds: a retire or an import reaches them without a restart.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from thoughtbank.cli_common import Commands, print_json, print_safe
from thoughtbank.files import open_text
from thoughtbank.index.artifact import (
    TEMPLATES_FILE,
    current_version,
    held_template_ids,
    version_dir,
)
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.index.usefulness import estimate_usefulness
from thoughtbank.schema import OutcomeError, OutcomeRecord
from thoughtbank.templates.store import read_templates

# Outcomes imported per commit: one fsync each, and an interrupted import keeps what it did.
IMPORT_BATCH = 1_000


def _tasks_by_id(index_dir: Path, versions: list[str]) -> dict[str, str]:
    """Each template id the given versions hold, with its task (later versions win)."""
    return {
        t.id: t.task
        for version in versions
        for t in read_templates(version_dir(index_dir, version) / TEMPLATES_FILE)
    }


def cmd_stats(args: argparse.Namespace) -> int:
    """Per template of the live version (and any other with outcomes): uses, mean score,
    estimated lift, retired."""
    tasks = _tasks_by_id(args.index, [current_version(args.index)])
    with OutcomeStore(args.index) as store:
        estimates = (
            estimate_usefulness(store.template_uses(), store.overrides())
            if store.path.exists()
            else {}
        )
    rows = []
    for template_id in sorted(tasks.keys() | estimates.keys()):
        task = tasks.get(template_id, "")
        if args.task and task != args.task:
            continue
        known = estimates.get(template_id)
        rows.append(
            {
                "id": template_id,
                "task": task,
                "uses": known.uses if known else 0,
                "mean_score": known.mean_score if known else None,
                "lift": known.lift if known else 0.0,
                "retired": known.retired if known else False,
            }
        )
    if args.json:
        print_json({"templates": rows})
        return 0
    print(f"{'id':<18} {'task':<20} {'uses':>6} {'mean':>6} {'lift':>7}  retired")
    for row in rows:
        mean = "-" if row["mean_score"] is None else f"{row['mean_score']:.3f}"
        print_safe(
            f"{row['id']:<18} {row['task']:<20} {row['uses']:>6} {mean:>6} "
            f"{row['lift']:>+7.3f}  {'yes' if row['retired'] else ''}"
        )
    return 0


def _outcomes_of(path: Path, known_ids: set[str]) -> Iterator[OutcomeRecord]:
    """The valid outcomes of a JSONL file; a bad line is reported on stderr and skipped."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = _outcome_of(json.loads(line))
                record.check()
                unknown = [t for t in record.template_ids if t not in known_ids]
                if unknown:
                    raise OutcomeError(
                        f"template_ids: {', '.join(unknown)} not in any index version"
                    )
            except (ValueError, TypeError) as exc:  # json and OutcomeError are ValueErrors
                print_safe(f"{path}:{number}: skipped: {exc}", file=sys.stderr)
                continue
            yield record


def _outcome_of(data: Any) -> OutcomeRecord:
    if not isinstance(data, dict):
        raise OutcomeError("not a JSON object")
    if "score" not in data:
        raise OutcomeError("score is required")
    ids = data.get("template_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise OutcomeError("template_ids must be a list of strings")
    texts = {}
    for name in ("outcome_id", "query", "task", "index_version", "model"):
        value = data.get(name, "")
        if not isinstance(value, str):
            raise OutcomeError(f"{name} must be a string")
        texts[name] = value
    return OutcomeRecord(
        template_ids=tuple(ids),
        score=data["score"],
        baseline_score=data.get("baseline_score"),
        **texts,
    )


def cmd_record(args: argparse.Namespace) -> int:
    """Import the outcomes of FILE; outcome ids already stored are not counted again."""
    known_ids = held_template_ids(args.index)
    new = repeated = 0
    with OutcomeStore(args.index) as store:
        batch: list[OutcomeRecord] = []
        for record in _outcomes_of(args.file, known_ids):
            batch.append(record)
            if len(batch) == IMPORT_BATCH:
                recorded = store.record(batch)
                new, repeated, batch = new + sum(recorded), repeated + recorded.count(False), []
        recorded = store.record(batch) if batch else []
        new, repeated = new + sum(recorded), repeated + recorded.count(False)
    print(f"recorded {new} outcomes; {repeated} were recorded before")
    return 0


def _set_retired(args: argparse.Namespace, retired: bool) -> int:
    known_ids = held_template_ids(args.index)
    unknown = [t for t in args.ids if t not in known_ids]
    if unknown:
        print_safe(f"thoughtbank: no version holds {', '.join(unknown)}", file=sys.stderr)
        return 2
    with OutcomeStore(args.index) as store:
        store.set_retired(args.ids, retired)
    print(f"{'retired' if retired else 'restored'} {len(args.ids)} templates")
    return 0


def add_commands(commands: Commands) -> None:
    feedback = commands.add_parser("feedback", help="outcomes of templates: stats, import, retire")
    actions = feedback.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    stats = actions.add_parser("stats", help="per template: uses, mean score, lift, retired")
    stats.add_argument("--index", type=Path, required=True, help="index directory")
    stats.add_argument("--task", default="", help="only this task's templates")
    stats.add_argument("--json", action="store_true", help='{"templates": [...]} on stdout')
    stats.set_defaults(func=cmd_stats)
    record = actions.add_parser("record", help="import outcomes from a JSONL file")
    record.add_argument("file", type=Path, help="JSONL: one RecordOutcome request per line")
    record.add_argument("--index", type=Path, required=True, help="index directory")
    record.set_defaults(func=cmd_record)
    for name, retired, help_text in (
        ("retire", True, "stop serving templates, whatever the evidence says"),
        ("restore", False, "serve templates again, whatever the evidence says"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("ids", nargs="+", help="template ids")
        action.add_argument("--index", type=Path, required=True, help="index directory")
        action.set_defaults(func=lambda args, retired=retired: _set_retired(args, retired))
