"""Argument types and terminal-safe output shared by the stages' command modules."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, TextIO, TypeAlias

from thoughtbank.echo import echo
from thoughtbank.text_safety import replace_unsafe, terminal_safe

#: The subcommand registry each stage adds its commands to.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples keep their lines; an option's default is shown unless its help already says it,
    it has none (None, a flag's False) or the option is required."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text
            or action.required
            or action.default in (None, False, argparse.SUPPRESS)
        ):
            return text
        return super()._get_help_string(action)


def quiet_model_loading(show_progress: bool) -> None:
    """Hide the "Loading weights" bar transformers draws when a model loads, unless progress is
    wanted and stderr is a terminal (imported here, when a model is about to load anyway)."""
    if show_progress and sys.stderr.isatty():
        return
    import transformers.utils.logging

    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def print_safe(text: str, file: TextIO | None = None) -> None:
    """Print text that may come from templates or a server: control characters and escape
    sequences are shown as escapes (``\\x1b[2J``), never sent raw to the terminal."""
    print(terminal_safe(text), file=file or sys.stdout)


def print_json(value: Any) -> None:
    """``value`` as JSON on stdout, with the characters json leaves raw (C1 controls such as
    ``\\x9b``, bidi overrides, U+2028) written as ``\\u`` escapes as well."""
    dumped = json.dumps(value, indent=2, ensure_ascii=False)
    print(replace_unsafe(dumped, lambda char: json.dumps(char)[1:-1]))


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def finite_float(text: str) -> float:
    """A float that is a number: ``nan`` and ``inf`` would pass every later comparison or
    overflow where they become a deadline."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {echo(text)}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {echo(text)}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1]: a share, a threshold on a similarity, a blend weight."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {echo(text)}")
    return value


MAX_PORT = 65_535
#: What servers bind unless told otherwise: this host only.
LOOPBACK = "127.0.0.1"
# HOST:PORT with a name, an IPv4 address or a bracketed IPv6 address; the port digits only.
_SERVER_ADDRESS = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):(?P<port>[0-9]{1,5})")


def server_address(text: str) -> str:
    """``HOST:PORT`` of a server to call (port 1..65535), several of them comma-separated
    (replicas), a ``dns:///HOST:PORT`` target or a ``unix:`` socket path."""
    if text.startswith(("unix:", "dns:///")) and not text.endswith((":", "/")):
        return text
    for part in text.split(","):
        match = _SERVER_ADDRESS.fullmatch(part.strip())
        if match is None or not 1 <= int(match["port"]) <= MAX_PORT:
            raise argparse.ArgumentTypeError(
                f"expected HOST:PORT (port in [1, {MAX_PORT}]), HOST:PORT,HOST:PORT,... or "
                f"dns:///HOST:PORT, got {echo(text)}"
            )
    return text


def existing_file(text: str) -> Path:
    """A path that must be a file now (a token, a certificate, queries): said where it enters,
    not as an OSError once the work has started."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{echo(text)} is a directory, expected a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file {echo(text)}")
    return path


def column_map(text: str) -> dict[str, str]:
    """``query=prompt,llm=model`` -> {"query": "prompt", "llm": "model"}."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise argparse.ArgumentTypeError(f"expected NAME=COLUMN[,NAME=COLUMN...], got {text!r}")
    return {name.strip(): column.strip() for name, column in pairs}


# Embedding backends and precisions (``thoughtbank.index.embedder`` runs them); here so that
# parsers can offer them without importing the engine.
EMBEDDING_BACKENDS = ("auto", "torch", "onnx")
DEFAULT_EMBED_BATCH_SIZE = 64
EMBEDDING_PRECISIONS = ("auto", "fp32", "bf16", "int8")


def add_engine_flags(parser: argparse.ArgumentParser, work: str) -> None:
    """``--engine``, ``--ray-address`` and ``--ray-actors``: where ``work`` runs."""
    parser.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help=f"{work} on this machine, or on the actors of a Ray cluster (the ray extra)",
    )
    parser.add_argument(
        "--ray-address",
        help="Ray cluster to join, as `ray start --head` printed it (default: start one here)",
    )
    parser.add_argument(
        "--ray-actors", type=positive_int, help="Ray actors (default: the cluster's CPUs)"
    )


def check_engine_flags(args: argparse.Namespace) -> None:
    """The ``--ray-*`` flags only mean something with ``--engine ray``."""
    if args.engine != "ray" and (args.ray_address or args.ray_actors):
        raise ValueError("--ray-address and --ray-actors need --engine ray")


def add_embedding_flags(parser: argparse.ArgumentParser, default: str | None) -> None:
    """``--backend`` and ``--precision``; ``default`` None means "as the index records"."""
    note = "auto: the fastest that keeps quality" if default else "default: the index's"
    parser.add_argument(
        "--backend",
        default=default,
        choices=EMBEDDING_BACKENDS,
        help=f"embedding backend ({note})",
    )
    parser.add_argument(
        "--precision",
        default=default,
        choices=EMBEDDING_PRECISIONS,
        help=f"embedding precision: fp32, bf16 (torch), int8 (onnx) ({note})",
    )
