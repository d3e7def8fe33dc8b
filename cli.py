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
from types import FrameType

import thoughtbank.retriever.cli
from thoughtbank._version import __version__
from thoughtbank.cli_common import Commands, HelpFormatter, print_safe
from thoughtbank.extras import missing_engine_module, require_engine
from thoughtbank.retriever.errors import ThoughtbankError

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

# Command name -> the engine module that registers it.
ENGINE_COMMANDS = {
    "mine": "thoughtbank.templates.cli",
    "index": "thoughtbank.index.cli",
    "serve": "thoughtbank.server",
    "demo": "thoughtbank.demo.runner",
    "eval": "thoughtbank.retriever.evaluation.cli",
}
# What a shell reports for a process its signal ended: 128 + the signal number.
SIGNAL_EXIT_BASE = 128
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _add_engine_unavailable(commands: Commands, name: str) -> None:
    parser = commands.add_parser(name, help="(needs the cpu or gpu extra)", add_help=False)
    parser.add_argument("ignored", nargs=argparse.REMAINDER, help="the command's arguments")

    def explain(_args: argparse.Namespace) -> int:
        require_engine(f"`thoughtbank {name}`")
        return 2

    parser.set_defaults(func=explain)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thoughtbank", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"thoughtbank {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    engine_installed = missing_engine_module() is None
    for name, module in ENGINE_COMMANDS.items():
        if engine_installed:
            importlib.import_module(module).add_commands(commands)
        else:
            _add_engine_unavailable(commands, name)
    thoughtbank.retriever.cli.add_commands(commands)
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
    args = build_parser().parse_args(argv)
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
