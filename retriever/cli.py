"""Client-side commands: ``query``, ``augment``, ``info``, ``template`` and ``augment-file``.

Each talks to a server (``--server``) or, with ``--index``, to an index loaded in-process. Read
commands print text for people or, with ``--json``, JSON for programs.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from thoughtbank.cli_common import (
    Commands,
    existing_file,
    finite_float,
    fraction,
    positive_float,
    positive_int,
    print_json,
    print_safe,
    server_address,
)
from thoughtbank.retriever.aio_client import AsyncThoughtbankClient
from thoughtbank.retriever.augment_file import (
    DEFAULT_CONCURRENCY,
    BadLine,
    BatchSettings,
    augment_stream,
    read_rows,
)
from thoughtbank.retriever.base_client import DEFAULT_TIMEOUT
from thoughtbank.retriever.cli_errors import Command, explain_connection_errors
from thoughtbank.retriever.client import ThoughtbankClient
from thoughtbank.retriever.types import (
    DEFAULT_K,
    AugmentedPrompt,
    IndexInfo,
    RetrievalQuery,
    RetrievalResult,
)
from thoughtbank.text_safety import terminal_safe

DEFAULT_SERVER = "127.0.0.1:50051"
# Values of a probe embedding shown by `info --json`; the rest only make the output unreadable.
PROBE_VALUES_SHOWN = 4
QUERY_EXAMPLES = """examples:
  thoughtbank query "How many apples are left?" --server 127.0.0.1:50051 --k 3
  thoughtbank query "What is 12 * 7?" --task gsm8k --json
  thoughtbank query "What is 12 * 7?" --index INDEX_DIR      # no server: the index in-process"""
AUGMENT_EXAMPLES = """examples:
  thoughtbank augment "How many apples are left?" --server 127.0.0.1:50051
  thoughtbank augment "What is 12 * 7?" --k 2 --max-template-tokens 300
  thoughtbank augment "What is 12 * 7?" --tls-ca ca.pem --token-file token --json"""


def connection_options(args: argparse.Namespace) -> dict[str, Any]:
    token = args.token_file.read_text().strip() if args.token_file else None
    return {
        "timeout": args.timeout,
        "token": token,
        "root_certificates": args.tls_ca,
        "wait_for_ready": args.wait,
        "namespace": args.namespace,
    }


def open_client(args: argparse.Namespace) -> ThoughtbankClient:
    if args.index is not None:
        return ThoughtbankClient.local(args.index, namespace=args.namespace)
    return ThoughtbankClient(args.server, **connection_options(args))


def open_async_client(args: argparse.Namespace) -> AsyncThoughtbankClient:
    if args.index is not None:
        return AsyncThoughtbankClient.local(args.index, namespace=args.namespace)
    return AsyncThoughtbankClient(args.server, **connection_options(args))


def request_of(args: argparse.Namespace) -> RetrievalQuery:
    return RetrievalQuery(
        args.text, k=args.k, task=args.task, min_score=args.min_score, diversity=args.diversity
    )


def print_hits(result: RetrievalResult) -> None:
    print_safe(f"index version {result.index_version}")
    if not result.hits:
        print_safe("no template matched (see --min-score and --task)", file=sys.stderr)
    for rank, hit in enumerate(result.hits, 1):
        print_safe(
            f"\n#{rank}  score {hit.score:.3f}  task {hit.template.task}  id {hit.template.id}"
        )
        print_safe(f"similar question: {hit.template.source_query.splitlines()[0][:120]}")
        print_safe(hit.template.text)


@explain_connection_errors
def cmd_query(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        result = client.retrieve(request_of(args))
    if args.json:
        print_json(asdict(result))
    else:
        print_hits(result)
    return 0


def explain_empty_prompt(augmented: AugmentedPrompt, max_template_tokens: int | None) -> None:
    """Say on stderr when the prompt holds no template, and the likely reason."""
    if augmented.hits:
        return
    reason = (
        f"none fits within --max-template-tokens {max_template_tokens}"
        if max_template_tokens is not None
        else "none matched (see --min-score and --task)"
    )
    print_safe(f"thoughtbank: the prompt holds no template: {reason}", file=sys.stderr)


@explain_connection_errors
def cmd_augment(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        augmented = client.augment(request_of(args), max_template_tokens=args.max_template_tokens)
    if args.json:
        print_json(asdict(augmented))
    else:
        print_safe(augmented.prompt)
    explain_empty_prompt(augmented, args.max_template_tokens)
    return 0


def summarized_probes(probes: list[list[float]]) -> list[dict[str, Any]]:
    """Each probe embedding as its dimension, norm and first values, not hundreds of floats."""
    return [
        {
            "dimension": len(vector),
            "norm": round(math.sqrt(sum(x * x for x in vector)), 6),
            "first_values": vector[:PROBE_VALUES_SHOWN],
        }
        for vector in probes
    ]


def info_as_json(info: IndexInfo) -> dict[str, Any]:
    value = asdict(info)
    probes = value["manifest"].get("embedder_probes")
    if probes:
        value["manifest"]["embedder_probes"] = summarized_probes(probes)
    return value


@explain_connection_errors
def cmd_info(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        info = client.index_info()
    if args.json:
        print_json(info_as_json(info))
        return 0
    print_safe(
        f"index version {info.index_version}: {info.count} templates, {info.index_type} "
        f"({info.metric}), embedder {info.embedder} ({info.dimension} dims)"
    )
    for task, count in sorted(info.task_counts.items()):
        print_safe(f"  {task}: {count}")
    return 0


@explain_connection_errors
def cmd_namespaces(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        namespaces = client.list_namespaces()
    if args.json:
        print_json({"namespaces": [asdict(n) for n in namespaces]})
        return 0
    for namespace in namespaces:
        print_safe(
            f"{namespace.name}: {namespace.count} templates, version {namespace.index_version}"
        )
    return 0


@explain_connection_errors
def cmd_template(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        template = client.get_template(args.id)
    if args.json:
        print_json(asdict(template))
    else:
        print_safe(
            f"{template.id}  task {template.task}  models {', '.join(template.source_models)}"
        )
        print_safe(f"source question: {template.source_query}\n\n{template.text}")
    return 0


def report_bad_line(source: Path) -> Callable[[BadLine], None]:
    # tqdm is imported where it is used: at module level it would slow every command's start.
    from tqdm import tqdm

    return lambda bad: tqdm.write(
        terminal_safe(f"{source}:{bad.line}: skipped: {bad.reason}"), file=sys.stderr
    )


async def _augment_file(args: argparse.Namespace, settings: BatchSettings) -> int:
    from tqdm import tqdm

    rows = read_rows(args.queries, settings)
    with (
        args.out.open("w", encoding="utf-8") as out,
        tqdm(desc="augmenting", unit="query", disable=args.quiet) as progress,
    ):
        async with open_async_client(args) as client:
            summary = await augment_stream(
                client, rows, out, settings, report_bad_line(args.queries), progress.update
            )
    print(
        f"thoughtbank: {summary.written} augmented rows written to {args.out}, "
        f"{summary.skipped} of {summary.read} skipped",
        file=sys.stderr,
    )
    return 0


@explain_connection_errors
def cmd_augment_file(args: argparse.Namespace) -> int:
    if not args.queries.is_file():
        raise FileNotFoundError(f"no queries file {args.queries}")
    settings = BatchSettings(
        query_column=args.query_column,
        task_column=args.task_column or None,
        prompt_column=args.prompt_column,
        k=args.k,
        concurrency=args.concurrency,
        limit=args.limit,
    )
    return asyncio.run(_augment_file(args, settings))


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--server",
        type=server_address,
        default=os.environ.get("THOUGHTBANK_SERVER") or DEFAULT_SERVER,  # empty: unset
        help="HOST:PORT of a running server, HOST:PORT,HOST:PORT,... of replicas or "
        f"dns:///NAME:PORT (default: $THOUGHTBANK_SERVER or {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("THOUGHTBANK_NAMESPACE", ""),
        help="namespace to read (default: $THOUGHTBANK_NAMESPACE or the server's 'default')",
    )
    target.add_argument(
        "--index", type=Path, help="query this index directory in-process instead of a server"
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=DEFAULT_TIMEOUT, help="deadline per call, seconds"
    )
    parser.add_argument(
        "--token-file",
        type=existing_file,
        help="file with the server's bearer token (default: no token)",
    )
    parser.add_argument(
        "--tls-ca",
        type=existing_file,
        help="PEM root certificates: connect with TLS (default: plaintext)",
    )
    parser.add_argument(
        "--wait", action="store_true", help="wait (up to --timeout) for a server that is starting"
    )


def add_retrieval_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k", type=positive_int, default=DEFAULT_K, help="templates to return")
    parser.add_argument(
        "--task", default="", help="prefer templates of this task (default: the server predicts it)"
    )
    parser.add_argument(
        "--min-score",
        type=finite_float,
        help="drop hits scoring below this (default: the index's calibrated minimum, if any)",
    )
    parser.add_argument("--diversity", type=fraction, default=0.0, help="MMR diversity, 0..1")


def add_read_command(
    commands: Commands, name: str, help_text: str, func: Command, examples: str | None = None
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, epilog=examples)
    add_connection_args(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=func)
    return parser


def add_commands(commands: Commands) -> None:
    query = add_read_command(
        commands, "query", "top-k templates for a query", cmd_query, QUERY_EXAMPLES
    )
    query.add_argument("text", help="the query")
    add_retrieval_args(query)

    augment = add_read_command(
        commands, "augment", "the augmented prompt for a query", cmd_augment, AUGMENT_EXAMPLES
    )
    augment.add_argument("text", help="the query")
    add_retrieval_args(augment)
    augment.add_argument(
        "--max-template-tokens",
        type=positive_int,
        help="token budget for the templates in the prompt (default: no budget)",
    )

    add_read_command(commands, "info", "what the served index is", cmd_info)
    add_read_command(
        commands,
        "namespaces",
        "the namespaces the server holds that the token reads",
        cmd_namespaces,
    )

    template = add_read_command(commands, "template", "one template by id", cmd_template)
    template.add_argument("id", help="template id")

    batch = commands.add_parser("augment-file", help="augment every query of a JSONL file")
    batch.add_argument("queries", type=Path, help="JSONL (or .jsonl.gz) with a query per row")
    batch.add_argument("--out", type=Path, required=True, help="output JSONL")
    add_connection_args(batch)
    batch.add_argument("--k", type=positive_int, default=DEFAULT_K, help="templates per prompt")
    batch.add_argument("--query-column", default="query", help="column with the query text")
    batch.add_argument(
        "--task-column",
        default="task_name",
        help="column with the task to prefer ('' for none; a row without it has none)",
    )
    batch.add_argument(
        "--prompt-column", default="augmented_prompt", help="output column for the prompt"
    )
    batch.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        help="most calls in flight at once",
    )
    batch.add_argument(
        "--limit", type=positive_int, help="stop after this many rows (default: all rows)"
    )
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    batch.set_defaults(
        func=cmd_augment_file,
        interrupt_note=lambda args: f"the rows augmented so far are in {args.out}",
    )
