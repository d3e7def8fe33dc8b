"""``thoughtbank mine``: the mining stage's command.

This is where the stage is wired to the others: near-duplicate merging gets the index stage's
embedder here, so the ``templates`` package itself never imports ``index``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from thoughtbank.cli_common import (
    Commands,
    add_engine_flags,
    check_engine_flags,
    column_map,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
    print_safe,
    quiet_model_loading,
)
from thoughtbank.echo import echo
from thoughtbank.templates.chat import CallPolicy
from thoughtbank.templates.distill import Distiller
from thoughtbank.templates.distiller_spec import DistillerSpec
from thoughtbank.templates.job import (
    DistillEngine,
    LeakagePolicy,
    MiningOptions,
    MiningSummary,
    mine_templates,
    rejects_file,
)
from thoughtbank.templates.journal import journal_path
from thoughtbank.templates.leakage import DEFAULT_MAX_QUERY_SPAN_WORDS, LeakageGuard
from thoughtbank.templates.merge import DEFAULT_MERGE_THRESHOLD, EmbedFunction
from thoughtbank.templates.readers import (
    DEFAULT_MAX_FIELD_BYTES,
    REQUIRED_COLUMNS,
    SCHEMA_COLUMNS,
    first_row_columns,
)
from thoughtbank.templates.selection import SelectionRules, Strategy

EXAMPLES = """examples:
  thoughtbank mine logs.jsonl.gz --out templates.jsonl
  thoughtbank mine export.csv --columns query=prompt,llm=model --performance-scale 100
  thoughtbank mine logs.jsonl.gz --distiller chat --llm openai:gpt-4o-mini --workers 8
  thoughtbank mine logs.jsonl.gz --resume        # go on after an interruption
  thoughtbank mine logs.jsonl.gz --engine ray --ray-address HEAD:6379 --workers 64"""


def _model_names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def schema_column_map(text: str) -> dict[str, str]:
    """``--columns``: a column map whose names are all columns of the log schema."""
    mapping = column_map(text)
    unknown = [name for name in mapping if name not in SCHEMA_COLUMNS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown schema column(s) {', '.join(echo(n) for n in unknown)}; "
            f"known: {', '.join(SCHEMA_COLUMNS)}"
        )
    return mapping


def _distiller_spec(args: argparse.Namespace) -> DistillerSpec:
    if args.distiller == "extractive":
        if args.llm:
            raise ValueError("--llm needs --distiller chat")
        return DistillerSpec()
    if not args.llm:
        raise ValueError("--distiller chat needs --llm openai:MODEL or python:MODULE:FACTORY")
    policy = CallPolicy(
        timeout_s=args.timeout,
        retries=args.retries,
        requests_per_second=args.rate_limit,
        call_threads=2 * args.workers,
    )
    return DistillerSpec(args.llm, policy)


def _distiller(args: argparse.Namespace) -> Distiller | DistillEngine:
    """This process's distiller, or with ``--engine ray`` the engine that builds one per actor."""
    check_engine_flags(args)
    if args.engine == "local":
        return _distiller_spec(args).build()
    from thoughtbank.templates.ray_engine import RayEngine

    return RayEngine(_distiller_spec(args), args.ray_address, args.ray_actors)


def _embed(args: argparse.Namespace) -> EmbedFunction | None:
    if args.no_merge:
        return None
    from thoughtbank.index import load_embedder

    quiet_model_loading(not args.no_progress)
    return load_embedder().encode


def _options(args: argparse.Namespace) -> MiningOptions:
    return MiningOptions(
        strategy=Strategy(args.strategy),
        top_n=args.top_n,
        rules=SelectionRules(args.min_performance, args.allow_models, args.deny_models),
        pitfalls=args.pitfalls,
        leakage=LeakagePolicy(args.leakage),
        guard=LeakageGuard(args.max_query_span),
        merge_threshold=args.merge_threshold,
        workers=args.workers,
        resume=args.resume,
        column_map=args.columns,
        performance_scale=args.performance_scale,
        max_field_bytes=args.max_field_bytes,
        rejects_path=args.rejects,
        progress=not args.no_progress and sys.stderr.isatty(),
    )


def _schema_advice(args: argparse.Namespace) -> str:
    """What the first log holds against what mining needs, and the ``--columns`` form."""
    found = first_row_columns(args.logs[0])
    mapped = set(found) | {name for name, own in (args.columns or {}).items() if own in found}
    missing = [name for name in REQUIRED_COLUMNS if name not in mapped]
    if not found or not missing:
        return ""
    example = ",".join(f"{name}=YOUR_COLUMN" for name in missing)
    return (
        f"\n{args.logs[0]} has columns {', '.join(found)}; mining needs "
        f"{', '.join(REQUIRED_COLUMNS)} (missing: {', '.join(missing)}). "
        f"Map yours with --columns {example}"
    )


def _why_no_templates(args: argparse.Namespace, summary: MiningSummary) -> str:
    rejects = rejects_file(_options(args), args.out)
    if not summary.rows_read:
        return f"no templates: the logs hold no rows ({summary.files_damaged} damaged or empty)"
    if summary.rows_read == summary.rows_rejected:
        return (
            f"no templates: none of the {summary.rows_rejected} rows could be used "
            f"(reasons in {rejects})" + _schema_advice(args)
        )
    return (
        f"no templates: {summary.groups_without_eligible_response} of {summary.groups} groups "
        f"had no response to distil (see --min-performance, --allow-models, --deny-models), "
        f"{summary.leakage_dropped} were dropped for leakage, {summary.failed} failed"
    )


def cmd_mine(args: argparse.Namespace) -> int:
    summary = mine_templates(args.logs, args.out, _distiller(args), _options(args), _embed(args))
    print(json.dumps(summary.as_dict(), indent=2))
    for failure in summary.failures:
        print_safe(f"failed group {failure}", file=sys.stderr)
    if not summary.templates:
        print_safe(f"thoughtbank: {_why_no_templates(args, summary)}", file=sys.stderr)
        return 1
    return 1 if summary.failed else 0


def _interrupt_note(args: argparse.Namespace) -> str:
    return (
        f"finished groups are kept in {journal_path(args.out)}; "
        "run the same command with --resume to go on"
    )


def _add_selection_arguments(mine: argparse.ArgumentParser) -> None:
    mine.add_argument(
        "--strategy",
        default="fusion",
        choices=[s.value for s in Strategy],
        help="how responses are ranked: fusion (5 best by performance, then judge), "
        "performance, balanced or cost (performance vs cost), judge",
    )
    mine.add_argument(
        "--top-n", type=positive_int, default=3, help="responses distilled into each template"
    )
    mine.add_argument(
        "--min-performance",
        type=fraction,
        help="lowest score that counts as a success (default: anything above 0)",
    )
    mine.add_argument(
        "--allow-models",
        type=_model_names,
        help="comma-separated models to distil from (default: all)",
    )
    mine.add_argument(
        "--deny-models",
        type=_model_names,
        default=frozenset(),
        help="comma-separated models never to distil from (default: none)",
    )


def _add_distiller_arguments(mine: argparse.ArgumentParser) -> None:
    mine.add_argument(
        "--distiller",
        default="extractive",
        choices=["extractive", "chat"],
        help="extractive: steps cut from the responses, no LLM; chat: an LLM writes them",
    )
    mine.add_argument(
        "--llm", help="chat model: openai:MODEL or python:package.module:factory (needs chat)"
    )
    mine.add_argument("--workers", type=positive_int, default=4, help="concurrent distillations")
    add_engine_flags(mine, "distil with --workers threads")
    mine.add_argument("--timeout", type=positive_float, default=120.0, help="seconds per LLM call")
    mine.add_argument(
        "--retries", type=non_negative_int, default=3, help="retries of a transient LLM error"
    )
    mine.add_argument(
        "--rate-limit", type=positive_float, help="LLM calls per second at most (default: no limit)"
    )
    mine.add_argument(
        "--pitfalls",
        action="store_true",
        help="distil an 'avoid' note from the query's failed responses",
    )
    mine.add_argument(
        "--leakage",
        default="flag",
        choices=[p.value for p in LeakagePolicy],
        help="a template still leaking after one re-ask is flagged or dropped",
    )
    mine.add_argument(
        "--max-query-span",
        type=positive_int,
        default=DEFAULT_MAX_QUERY_SPAN_WORDS,
        help="longest run of query words a template may copy",
    )


def add_mining_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that shape a mining job, shared by ``mine`` and ``ingest``."""
    parser.add_argument("--rejects", type=Path, help="bad rows file (default: OUT.rejects)")
    parser.add_argument(
        "--columns",
        type=schema_column_map,
        help="map schema names to the logs' columns: query=prompt,llm=model "
        "(default: the names as they are)",
    )
    parser.add_argument(
        "--performance-scale",
        type=positive_float,
        default=1.0,
        help="top of the logs' performance scale (e.g. 100)",
    )
    parser.add_argument(
        "--max-field-bytes",
        type=positive_int,
        default=DEFAULT_MAX_FIELD_BYTES,
        help="reject a row with a larger field (default: 1 MiB)",
    )
    _add_selection_arguments(parser)
    _add_distiller_arguments(parser)
    parser.add_argument(
        "--merge-threshold",
        type=fraction,
        default=DEFAULT_MERGE_THRESHOLD,
        help="cosine at which templates of a task are merged",
    )
    parser.add_argument("--no-merge", action="store_true", help="keep near-duplicate templates")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def mining_job(
    args: argparse.Namespace,
) -> tuple[Distiller | DistillEngine, MiningOptions, EmbedFunction | None]:
    """The distiller, options and merge embedding that ``add_mining_arguments`` asked for."""
    return _distiller(args), _options(args), _embed(args)


def add_commands(commands: Commands) -> None:
    mine = commands.add_parser("mine", help="distil templates from multi-LLM logs", epilog=EXAMPLES)
    mine.add_argument(
        "logs", nargs="+", type=Path, help="log files (.jsonl, .jsonl.gz, .csv, .csv.gz, .parquet)"
    )
    mine.add_argument(
        "--out",
        type=Path,
        default=Path("templates.jsonl"),
        help="templates JSONL to write (default: templates.jsonl)",
    )
    add_mining_arguments(mine)
    mine.add_argument("--resume", action="store_true", help="skip groups finished by a past run")
    mine.set_defaults(func=cmd_mine, interrupt_note=_interrupt_note)
