"""``thoughtbank query`` and ``thoughtbank augment``: the client-side commands."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict

from thoughtbank.cli_common import positive_int
from thoughtbank.retriever.types import RetrievalResult


def _print_hits(result: RetrievalResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result), indent=2, ensure_ascii=False))
        return
    print(f"index version {result.index_version}")
    for rank, hit in enumerate(result.hits, 1):
        print(f"\n#{rank}  score {hit.score:.3f}  task {hit.template.task}  id {hit.template.id}")
        print(f"similar question: {hit.template.source_query.splitlines()[0][:120]}")
        print(hit.template.text)


def cmd_query(args: argparse.Namespace) -> int:
    from thoughtbank.retriever import ThoughtbankClient

    with ThoughtbankClient(args.server) as client:
        _print_hits(client.retrieve(args.text, k=args.k, task=args.task), args.json)
    return 0


def cmd_augment(args: argparse.Namespace) -> int:
    from thoughtbank.retriever import ThoughtbankClient

    with ThoughtbankClient(args.server) as client:
        augmented = client.augment(args.text, k=args.k, task=args.task)
    if args.json:
        print(json.dumps(asdict(augmented), indent=2, ensure_ascii=False))
    else:
        print(augmented.prompt)
    return 0


def _add_client_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="the query")
    parser.add_argument("--server", default=os.environ.get("THOUGHTBANK_SERVER", "127.0.0.1:50051"),
                        help="HOST:PORT of a running server (default: $THOUGHTBANK_SERVER)")
    parser.add_argument("--k", type=positive_int, default=3, help="templates to return")
    parser.add_argument("--task", default="", help="prefer templates of this task")
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_commands(commands: argparse._SubParsersAction) -> None:
    query = commands.add_parser("query", help="top-k templates for a query from a server")
    _add_client_args(query)
    query.set_defaults(func=cmd_query)

    augment = commands.add_parser("augment", help="the augmented prompt for a query")
    _add_client_args(augment)
    augment.set_defaults(func=cmd_augment)
