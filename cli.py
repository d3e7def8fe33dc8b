"""``thoughtbank`` command line. Each stage registers its own commands; this module assembles
them and turns expected errors into one-line messages with a non-zero exit code.

The client commands work in every install; the engine's commands need the ``cpu`` or ``gpu``
extra and, without it, say so instead of running.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import thoughtbank.retriever.cli
from thoughtbank._version import __version__
from thoughtbank.cli_common import Commands, print_safe
from thoughtbank.extras import missing_engine_module, require_engine
from thoughtbank.retriever.errors import ThoughtbankError

# Command name -> the engine module that registers it.
ENGINE_COMMANDS = {
    "mine": "thoughtbank.templates.cli",
    "index": "thoughtbank.index.cli",
    "serve": "thoughtbank.server",
    "demo": "thoughtbank.demo.runner",
    "eval": "thoughtbank.retriever.evaluation.cli",
}


def _add_engine_unavailable(commands: Commands, name: str) -> None:
    parser = commands.add_parser(name, help="(needs the cpu or gpu extra)", add_help=False)
    parser.add_argument("ignored", nargs=argparse.REMAINDER)

    def explain(_args: argparse.Namespace) -> int:
        require_engine(f"`thoughtbank {name}`")
        return 2

    parser.set_defaults(func=explain)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="thoughtbank", description=__doc__)
    parser.add_argument("--version", action="version", version=f"thoughtbank {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    engine_installed = missing_engine_module() is None
    for name, module in ENGINE_COMMANDS.items():
        if engine_installed:
            importlib.import_module(module).add_commands(commands)
        else:
            _add_engine_unavailable(commands, name)
    thoughtbank.retriever.cli.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ThoughtbankError as exc:
        print_safe(f"thoughtbank: {exc.code.name}: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as exc:
        print_safe(f"thoughtbank: error: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
