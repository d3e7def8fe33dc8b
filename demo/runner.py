"""``thoughtbank demo``: mine -> index -> serve -> query -> augment, on the bundled demo log."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from thoughtbank.cli_common import Commands
from thoughtbank.demo import demo_logs_path
from thoughtbank.index import build_index, load_embedder
from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.templates import ExtractiveDistiller, MiningOptions, mine_templates, read_templates

DEMO_QUERIES = (
    (
        "Sam buys 6 bags of oranges with 15 oranges in each bag and gives away 8. "
        "How many oranges does Sam have left?"
    ),
    "A 4 kg cart is pushed with a force of 20 N. What is its acceleration?\n"
    "Options:\n(A) 2 m/s^2\n(B) 5 m/s^2\n(C) 80 m/s^2\n(D) 16 m/s^2",
    "Write a Python function to find the smallest element of a list.",
)


def run_demo(workdir: Path | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="thoughtbank-demo-") as tmp:
        root = Path(workdir or tmp)
        templates_path = root / "templates.jsonl"
        summary = mine_templates(
            [demo_logs_path()], templates_path, ExtractiveDistiller(), MiningOptions(workers=2)
        )
        print(
            f"== mined {summary.templates} templates from {summary.rows_read} log rows "
            f"({summary.groups} queries) -> {templates_path}"
        )
        templates = list(read_templates(templates_path))
        manifest = build_index(templates, root / "index", load_embedder())
        print(f"== built index version {manifest.version}: {manifest.task_counts}")
        with ServerProcess(root / "index") as server:
            print(f"== server listening on {server.address}")
            with ThoughtbankClient(server.address) as client:
                for query in DEMO_QUERIES:
                    print(f"\n== query: {query.splitlines()[0]}")
                    for hit in client.retrieve(query, k=2).hits:
                        print(
                            f"   {hit.score:.3f}  [{hit.template.task}]  "
                            f"{hit.template.source_query.splitlines()[0][:90]}"
                        )
                augmented = client.augment(DEMO_QUERIES[0], k=2)
                print("\n== augmented prompt for the first query:\n")
                print(augmented.prompt)
        print("\n== server stopped")


def cmd_demo(args: argparse.Namespace) -> int:
    run_demo(workdir=args.workdir)
    return 0


def add_commands(commands: Commands) -> None:
    demo = commands.add_parser("demo", help="run the whole pipeline on the bundled demo logs")
    demo.add_argument("--workdir", type=Path, help="keep artifacts here (default: a temp dir)")
    demo.set_defaults(func=cmd_demo)
