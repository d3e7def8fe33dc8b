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
from dataclasses import dataclass

from thoughtbank._version import __version__
from thoughtbank.cli_common import Commands, print_safe
from thoughtbank.extras import missing_engine_module, require_engine


@dataclass(frozen=True)
class CommandModule:
    """A module whose ``add_commands`` registers ``commands`` (name -> one-line help).

    The help lines are here so that ``thoughtbank --help`` lists every command without
    importing any module: the engine's take seconds to import."""

    module: str
    commands: dict[str, str]
    needs_engine: bool


COMMAND_MODULES = (
    CommandModule(
        "thoughtbank.templates.cli", {"mine": "distil templates from multi-LLM logs"}, True
    ),
    CommandModule("thoughtbank.index.cli", {"index": "build and manage the template index"}, True),
    CommandModule("thoughtbank.server", {"serve": "serve an index over gRPC"}, True),
    CommandModule(
        "thoughtbank.demo.runner", {"demo": "run the whole pipeline on the bundled demo logs"}, True
    ),
    CommandModule(
        "thoughtbank.retriever.evaluation.cli",
        {"eval": "measure and calibrate retrieval quality"},
        True,
    ),
    CommandModule(
        "thoughtbank.retriever.cli",
        {
            "query": "top-k templates for a query",
            "augment": "the augmented prompt for a query",
            "info": "what the served index is",
            "template": "one template by id",
            "augment-file": "augment every query of a JSONL file",
        },
        False,
    ),
    CommandModule(
        "thoughtbank.doctor",
        {"doctor": "check the install, an index and a server; say how to fix what fails"},
        False,
    ),
    CommandModule(
        "thoughtbank.completion",
        {"completion": "print the shell completion script for bash or zsh"},
        False,
    ),
)


def _add_engine_unavailable(commands: Commands, name: str) -> None:
    parser = commands.add_parser(name, help="(needs the cpu or gpu extra)", add_help=False)
    parser.add_argument("ignored", nargs=argparse.REMAINDER)

    def explain(_args: argparse.Namespace) -> int:
        require_engine(f"`thoughtbank {name}`")
        return 2

    parser.set_defaults(func=explain)


def _add_listed_only(commands: Commands, entry: CommandModule) -> None:
    """Name and help of commands not run this time, for the top-level help and choices."""
    for name, help_text in entry.commands.items():
        commands.add_parser(name, help=help_text, add_help=False)


def _chosen_command(argv: Sequence[str]) -> str | None:
    # The top-level parser has only --version and --help, so the first word is the command.
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``argv`` one that imports only the chosen command's module."""
    parser = argparse.ArgumentParser(prog="thoughtbank", description=__doc__)
    parser.add_argument("--version", action="version", version=f"thoughtbank {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    chosen = None if argv is None else _chosen_command(argv)
    engine_missing = missing_engine_module() is not None
    for entry in COMMAND_MODULES:
        if entry.needs_engine and engine_missing:
            for name in entry.commands:
                _add_engine_unavailable(commands, name)
        elif argv is None or chosen in entry.commands:
            importlib.import_module(entry.module).add_commands(commands)
        else:
            _add_listed_only(commands, entry)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = build_parser(arguments).parse_args(arguments)
    # Imported after parsing: it loads the client SDK, which --version and --help do not need.
    from thoughtbank.retriever.errors import ThoughtbankError

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
