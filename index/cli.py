"""``thoughtbank index ...``: the index stage's commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from thoughtbank.cli_common import positive_int


def cmd_build(args: argparse.Namespace) -> int:
    from thoughtbank.index import Embedder, build_index
    from thoughtbank.templates import read_templates

    embedder = Embedder(args.model, device=args.device, batch_size=args.batch_size)
    manifest = build_index(list(read_templates(args.templates)), args.out, embedder,
                           embed_field=args.embed, show_progress=sys.stderr.isatty())
    print(json.dumps({"version": manifest.version, "count": manifest.count,
                      "task_counts": manifest.task_counts, "index_dir": str(args.out)}, indent=2))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    index = commands.add_parser("index", help="build and manage the template index")
    index_commands = index.add_subparsers(dest="index_command", required=True)
    build = index_commands.add_parser("build", help="embed templates into a new index")
    build.add_argument("templates", type=Path, help="templates JSONL from `thoughtbank mine`")
    build.add_argument("--out", type=Path, required=True, help="index directory")
    build.add_argument("--model", default="bundled:all-MiniLM-L6-v2",
                       help="sentence-transformers model: local path or hub name")
    build.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    build.add_argument("--batch-size", type=positive_int, default=64)
    build.add_argument("--embed", default="query", choices=["query", "query+template"],
                       help="what is embedded for each template")
    build.set_defaults(func=cmd_build)
