"""``thoughtbank ingest``: mine new log files into a served index as new versions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from thoughtbank.cli_common import Commands, positive_float, print_safe
from thoughtbank.index.ingest import IngestedFile, Ingester
from thoughtbank.templates.cli import add_mining_arguments, mining_job

EXAMPLES = """examples:
  thoughtbank ingest new-logs.jsonl.gz --index INDEX_DIR
  thoughtbank ingest --index INDEX_DIR --watch incoming/   # runs until interrupted
"""


def _report(done: IngestedFile) -> None:
    print_safe(
        f"ingested {done.name}: {done.templates} templates, {done.added} new, "
        f"live version {done.version}"
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    if not args.logs and args.watch is None:
        print("thoughtbank: give log files, --watch DIR, or both", file=sys.stderr)
        return 2
    ingester = Ingester(args.index, *mining_job(args))
    for path in args.logs:
        done = ingester.ingest(path)
        if done is None:
            print_safe(f"{path}: ingested before; skipped")
        else:
            _report(done)
    if args.watch is not None:
        ingester.watch(args.watch, args.poll_interval, args.settle_seconds, _report)
    return 0


def add_commands(commands: Commands) -> None:
    ingest = commands.add_parser(
        "ingest", help="mine new logs into an index as new versions", epilog=EXAMPLES
    )
    ingest.add_argument("logs", nargs="*", type=Path, help="log files to ingest now")
    ingest.add_argument("--index", type=Path, required=True, help="index directory")
    ingest.add_argument(
        "--watch", type=Path, help="keep running: ingest each complete file that appears here"
    )
    ingest.add_argument(
        "--poll-interval", type=positive_float, default=2.0, help="seconds between looks at DIR"
    )
    ingest.add_argument(
        "--settle-seconds",
        type=positive_float,
        default=5.0,
        help="a file unchanged this long is complete (or rename finished files in)",
    )
    add_mining_arguments(ingest)
    ingest.set_defaults(func=cmd_ingest, resume=True)
