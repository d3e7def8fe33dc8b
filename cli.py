"""``thoughtbank`` command line. Each stage registers its own commands; this module assembles
them and turns expected errors into one-line messages with a non-zero exit code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import thoughtbank.index.cli
import thoughtbank.retriever.cli
import thoughtbank.templates.cli
from thoughtbank._version import __version__


def cmd_serve(args: argparse.Namespace) -> int:
    from thoughtbank.server import READY_PREFIX, ServerConfig, run_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)
    config = ServerConfig(index_dir=args.index, host=args.host, port=args.port, grace=args.grace)
    run_server(config, ready=lambda port: print(f"{READY_PREFIX}{args.host}:{port}", flush=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from thoughtbank.demo.runner import run_demo

    run_demo(workdir=args.workdir)
    return 0


def _add_serve_and_demo(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve an index over gRPC")
    serve.add_argument("--index", type=Path, required=True, help="index directory")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    serve.add_argument("--grace", type=float, default=10.0, help="seconds to drain on SIGTERM")
    serve.set_defaults(func=cmd_serve)

    demo = commands.add_parser("demo", help="run the whole pipeline on the bundled demo logs")
    demo.add_argument("--workdir", type=Path, help="keep artifacts here (default: a temp dir)")
    demo.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thoughtbank", description=__doc__)
    parser.add_argument("--version", action="version", version=f"thoughtbank {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    thoughtbank.templates.cli.add_commands(commands)
    thoughtbank.index.cli.add_commands(commands)
    _add_serve_and_demo(commands)
    thoughtbank.retriever.cli.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from thoughtbank.retriever.errors import ThoughtbankError

    try:
        return args.func(args)
    except ThoughtbankError as exc:
        print(f"thoughtbank: {exc.code.name}: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"thoughtbank: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
