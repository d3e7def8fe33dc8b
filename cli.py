"""``thoughtbank`` command line. Each stage registers its own commands; this module assembles
them and turns expected errors into one-line messages with a non-zero exit code.

The client commands work in every install; the engine's commands need the ``cpu`` or ``gpu``
extra and, without it, say so instead of running.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from thoughtbank._version import __version__
from thoughtbank.cli_common import Commands, HelpFormatter, print_safe
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
        "thoughtbank.retriever.serving.browser.cli",
        {"browse": "browse an index's templates and try queries in a web page"},
        True,
    ),
    CommandModule(
        "thoughtbank.index.ingest_cli",
        {"ingest": "mine new logs into an index as new versions"},
        True,
    ),
    CommandModule(
        "thoughtbank.index.feedback_cli",
        {"feedback": "outcomes of templates: stats, import, retire"},
        True,
    ),
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
            "namespaces": "the namespaces the server holds that the token reads",
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


DESCRIPTION = (
    "Retrieve reusable thought templates for a query: mine them from multi-LLM logs, index "
    "them, serve them over gRPC and query or augment prompts with them."
)
EPILOG = (
    "examples:\n"
    "  thoughtbank mine logs.jsonl.gz --out templates.jsonl\n"
    "  thoughtbank index build templates.jsonl --out INDEX_DIR\n"
    "  thoughtbank serve --index INDEX_DIR --port 50051\n"
    '  thoughtbank query "How many apples are left?" --server 127.0.0.1:50051\n'
    "\nRun `thoughtbank COMMAND --help` for a command's options."
)

# What a shell reports for a process its signal ended: 128 + the signal number.
SIGNAL_EXIT_BASE = 128
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
    parser = argparse.ArgumentParser(
        prog="thoughtbank", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"thoughtbank {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
    _finish_help(parser)
    return parser


def _finish_help(parser: argparse.ArgumentParser) -> None:
    """Give every command the shared help layout, and its one-line summary as description."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        summaries = {choice.dest: choice.help for choice in action._choices_actions}
        for name, command in action.choices.items():
            summary = summaries.get(name)
            if summary and not command.description:
                command.description = summary[0].upper() + summary[1:] + "."
            _finish_help(command)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; ``signum`` says which. A BaseException, like
    KeyboardInterrupt, so no ``except Exception`` on the way up swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _stop_writing_stdout() -> None:
    """The reader of stdout went away (``| head``): send what is left to /dev/null, so neither
    a message nor the interpreter's final flush complains, as Unix tools stay quiet then."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _interrupt_note(args: argparse.Namespace) -> str:
    note = getattr(args, "interrupt_note", None)
    return str(note(args)) if note is not None else "nothing was changed"


def _run(args: argparse.Namespace) -> int:
    # Imported here: it loads the client SDK, which --version and --help do not need.
    from thoughtbank.retriever.errors import ThoughtbankError

    try:
        result: int = args.func(args)
    except ThoughtbankError as exc:
        print_safe(f"thoughtbank: {exc.code.name}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        print_safe(f"thoughtbank: error: {exc}", file=sys.stderr)
        return 2
    return result


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = build_parser(arguments).parse_args(arguments)
    # SIGTERM becomes an exception like SIGINT, so the command's cleanup (journal, spool,
    # locks) runs for both; signals can only be caught from the main thread.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _raise_interrupted) for sig in INTERRUPT_SIGNALS}
    try:
        return _run(args)
    except Interrupted as exc:
        print_safe(f"thoughtbank: interrupted ({exc}): {_interrupt_note(args)}", file=sys.stderr)
        return SIGNAL_EXIT_BASE + exc.signum
    except BrokenPipeError:
        _stop_writing_stdout()
        return SIGNAL_EXIT_BASE + signal.SIGPIPE
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
