"""``thoughtbank`` command line. Each stage registers its own commands; this module assembles
them and turns expected errors into one-line messages with a non-zero exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import thoughtbank.demo.runner
import thoughtbank.evaluation.cli
import thoughtbank.index.cli
import thoughtbank.retriever.cli
import thoughtbank.server
import thoughtbank.templates.cli
from thoughtbank._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thoughtbank", description=__doc__)
    parser.add_argument("--version", action="version", version=f"thoughtbank {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    thoughtbank.templates.cli.add_commands(commands)
    thoughtbank.index.cli.add_commands(commands)
    thoughtbank.server.add_commands(commands)
    thoughtbank.demo.runner.add_commands(commands)
    thoughtbank.retriever.cli.add_commands(commands)
    thoughtbank.evaluation.cli.add_commands(commands)
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
