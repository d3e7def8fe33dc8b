"""``thoughtbank mine``: the mining stage's command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from thoughtbank.cli_common import column_map, positive_int


def cmd_mine(args: argparse.Namespace) -> int:
    from thoughtbank.templates import ExtractiveDistiller, MiningOptions, Strategy, mine_templates

    options = MiningOptions(
        strategy=Strategy(args.strategy),
        top_n=args.top_n,
        workers=args.workers,
        resume=args.resume,
        column_map=args.columns,
        rejects_path=args.rejects,
    )
    summary = mine_templates(args.logs, args.out, ExtractiveDistiller(), options)
    print(json.dumps(summary.as_dict(), indent=2))
    for failure in summary.failures:
        print(f"failed group {failure}", file=sys.stderr)
    return 1 if summary.failed else 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    mine = commands.add_parser("mine", help="distil templates from multi-LLM logs")
    mine.add_argument("logs", nargs="+", type=Path, help="log files (.jsonl, .jsonl.gz, .csv)")
    mine.add_argument("--out", type=Path, required=True, help="templates JSONL to write")
    mine.add_argument("--rejects", type=Path, help="bad rows file (default: OUT.rejects)")
    mine.add_argument("--strategy", default="fusion",
                      choices=["fusion", "performance", "balanced", "cost", "judge"])
    mine.add_argument("--top-n", type=positive_int, default=3, help="responses per template")
    mine.add_argument("--workers", type=positive_int, default=4, help="concurrent distillations")
    mine.add_argument("--resume", action="store_true", help="skip groups finished by a past run")
    mine.add_argument("--columns", type=column_map, help="map schema names to columns")
    mine.set_defaults(func=cmd_mine)
