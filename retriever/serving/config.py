"""Configuration of ``thoughtbank serve``: flags > ``THOUGHTBANK_*`` environment > TOML file.

Every option is declared once, as a field of ``ServerConfig`` with its help text; the command-line
flags, the environment variable names (``THOUGHTBANK_`` + the field name in capitals) and the
TOML keys (the field names, at top level or under ``[server]``) are all derived from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from thoughtbank.cli_common import EMBEDDING_BACKENDS, EMBEDDING_PRECISIONS, LOOPBACK, MAX_PORT
from thoughtbank.echo import echo
from thoughtbank.retriever.serving.engine import DEFAULT_MAX_QUERY_CHARS
from thoughtbank.retriever.serving.feedback import DEFAULT_USEFULNESS_WEIGHT
from thoughtbank.retriever.serving.sanitize import DEFAULT_MAX_TEMPLATE_CHARS
from thoughtbank.retriever.types import DEFAULT_MAX_RESPONSE_BYTES

ENV_PREFIX = "THOUGHTBANK_"
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Shorter CURRENT checks than this would keep a core busy reading one small file.
MIN_RELOAD_INTERVAL = 0.1


def _doc(help: str, flag: str | None = None) -> dict[str, str | None]:
    """Field metadata: the option's help text and, when not derived from its name, its flag."""
    return {"help": help, "flag": flag}


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``serve`` needs; defaults are the production defaults."""

    index_dir: Path | None = field(
        default=None,
        metadata=_doc("index directory, served as namespace 'default'", flag="--index"),
    )
    index_root: Path | None = field(
        default=None,
        metadata=_doc("folder whose index directories are namespaces named by their folders"),
    )
    host: str = field(default=LOOPBACK, metadata=_doc("address to bind"))
    port: int = field(default=50051, metadata=_doc("port to bind; 0 picks a free one"))
    grace: float = field(
        default=10.0, metadata=_doc("seconds to drain in-flight requests on SIGTERM")
    )
    metrics_port: int | None = field(
        default=None, metadata=_doc("serve Prometheus metrics on this port (0: free)")
    )
    ui_port: int | None = field(
        default=None,
        metadata=_doc("serve the template browser on this port (0: free); needs the ui extra"),
    )
    ui_host: str = field(
        default=LOOPBACK, metadata=_doc("address the template browser binds (--ui-port)")
    )
    auth_token_file: Path | None = field(
        default=None,
        metadata=_doc("file holding the bearer token clients must send; unset: no auth"),
    )
    auth_tokens_file: Path | None = field(
        default=None,
        metadata=_doc("TOML file of [[token]] tables, each granting some namespaces"),
    )
    tls_cert: Path | None = field(
        default=None, metadata=_doc("PEM certificate chain for TLS (with --tls-key)")
    )
    tls_key: Path | None = field(
        default=None, metadata=_doc("PEM private key for TLS (with --tls-cert)")
    )
    backend: str | None = field(
        default=None,
        metadata=_doc("embedding backend instead of the index's: auto, torch or onnx"),
    )
    precision: str | None = field(
        default=None,
        metadata=_doc("embedding precision instead of the index's: auto, fp32, bf16 or int8"),
    )
    max_query_chars: int = field(
        default=DEFAULT_MAX_QUERY_CHARS, metadata=_doc("longest accepted query, in characters")
    )
    max_template_chars: int = field(
        default=DEFAULT_MAX_TEMPLATE_CHARS,
        metadata=_doc("template texts are cut to this many characters"),
    )
    prompt_template_file: Path | None = field(
        default=None,
        metadata=_doc(
            "PromptTemplate text with {templates}, {query}, {answer_instruction}",
            flag="--prompt-template",
        ),
    )
    max_concurrent_rpcs: int = field(
        default=256, metadata=_doc("RPCs beyond this many in flight: RESOURCE_EXHAUSTED")
    )
    max_batch_size: int = field(
        default=16, metadata=_doc("most queries embedded in one micro-batch")
    )
    batch_wait_ms: float = field(
        default=5.0, metadata=_doc("how long a micro-batch waits for the callers it expects")
    )
    batch_workers: int = field(
        default=2, metadata=_doc("micro-batches computed at once, sharing the cores")
    )
    max_batch_queries: int = field(
        default=1_000, metadata=_doc("most requests in one RetrieveBatch call")
    )
    reload_interval: float = field(
        default=2.0, metadata=_doc("seconds between checks of INDEX_DIR/CURRENT; 0: off")
    )
    usefulness_weight: float = field(
        default=DEFAULT_USEFULNESS_WEIGHT,
        metadata=_doc("weight of a template's estimated lift beside similarity; 0: similarity"),
    )
    exploration: float = field(
        default=0.0,
        metadata=_doc("Thompson sampling: rank by posterior draws of lift times this; 0: off"),
    )
    feedback_interval: float = field(
        default=5.0,
        metadata=_doc("seconds between reads of the outcome store for ranking; 0: never"),
    )
    max_message_bytes: int = field(
        default=4 * 1024 * 1024, metadata=_doc("largest accepted request message")
    )
    max_response_bytes: int = field(
        default=DEFAULT_MAX_RESPONSE_BYTES,
        metadata=_doc("requests whose answer could be larger: INVALID_ARGUMENT, before any work"),
    )
    keepalive_time: float = field(
        default=60.0, metadata=_doc("seconds between keepalive pings on idle connections")
    )
    keepalive_timeout: float = field(
        default=20.0, metadata=_doc("seconds to wait for a keepalive ping's answer")
    )
    max_connections: int = field(
        default=1_024,
        metadata=_doc("open client connections at most, lowered to fit the open-files limit"),
    )
    max_unsent_bytes_per_connection: int = field(
        default=128 * 1024 * 1024,
        metadata=_doc("answer bytes a connection may leave unread; more calls: RESOURCE_EXHAUSTED"),
    )
    max_unsent_bytes: int = field(
        default=1024 * 1024 * 1024,
        metadata=_doc("answer bytes all clients may leave unread; more calls: RESOURCE_EXHAUSTED"),
    )
    log_format: str = field(default="json", metadata=_doc("log line format: json or text"))
    log_level: str = field(default="INFO", metadata=_doc("DEBUG, INFO, WARNING or ERROR"))

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise ValueError("invalid server configuration: " + "; ".join(problems))


#: The accepted range of every numeric option, in one place, so that flags, environment, file and
#: direct construction refuse the same values; upper ends keep the values gRPC takes as 32-bit
#: milliseconds and byte counts from overflowing.
RANGES: dict[str, tuple[float, float]] = {
    "port": (0, MAX_PORT),
    "metrics_port": (0, MAX_PORT),
    "ui_port": (0, MAX_PORT),
    "grace": (0, 3_600),
    "max_query_chars": (1, 1 << 28),
    "max_template_chars": (1, 1 << 24),
    "max_concurrent_rpcs": (1, 1 << 20),
    "max_batch_size": (1, 4_096),
    "batch_wait_ms": (0, 1_000),
    "batch_workers": (1, 256),
    "max_batch_queries": (1, 1 << 20),
    "reload_interval": (0, 86_400),
    "usefulness_weight": (0, 10),
    "exploration": (0, 10),
    "feedback_interval": (0, 86_400),
    "max_message_bytes": (1, (1 << 31) - 1),
    "max_response_bytes": (1, (1 << 31) - 1),
    "keepalive_time": (1, 86_400),
    "keepalive_timeout": (1, 86_400),
    "max_connections": (1, 1 << 20),
    "max_unsent_bytes_per_connection": (1, 1 << 40),
    "max_unsent_bytes": (1, 1 << 40),
}


def _problems(config: ServerConfig) -> typing.Iterator[str]:
    if config.index_dir is None and config.index_root is None:
        yield (
            "no index (--index INDEX_DIR or --index-root ROOT, THOUGHTBANK_INDEX_DIR or "
            "THOUGHTBANK_INDEX_ROOT, or index_dir or index_root in the file)"
        )
    if config.index_dir is not None and config.index_root is not None:
        yield "--index and --index-root exclude each other"
    if (config.tls_cert is None) != (config.tls_key is None):
        yield "--tls-cert and --tls-key go together"
    for name, (low, high) in RANGES.items():
        problem = _range_problem(name, getattr(config, name), low, high)
        if problem:
            yield problem
    if 0 < config.reload_interval < MIN_RELOAD_INTERVAL:
        yield f"reload_interval must be 0 (off) or at least {MIN_RELOAD_INTERVAL} s"
    if config.max_query_chars * 4 >= config.max_message_bytes:
        yield "max_query_chars must stay below the message limit (4 bytes per character)"
    for name, choices in (("backend", EMBEDDING_BACKENDS), ("precision", EMBEDDING_PRECISIONS)):
        value = getattr(config, name)
        if value is not None and value not in choices:
            yield f"{name} must be one of {', '.join(choices)}, got {echo(value)}"
    if config.log_format not in LOG_FORMATS:
        yield f"log_format must be one of {', '.join(LOG_FORMATS)}, got {echo(config.log_format)}"
    if config.log_level.upper() not in LOG_LEVELS:
        yield f"log_level must be one of {', '.join(LOG_LEVELS)}, got {echo(config.log_level)}"


def _range_problem(name: str, value: object, low: float, high: float) -> str | None:
    """Why ``value`` is no valid ``name`` (type, finiteness, range), or None when it is."""
    if value is None and _is_optional(name):
        return None
    kind = _value_type(name)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or (kind is int and not isinstance(value, int)):
        return f"{name} must be {_KIND_NAMES[kind]}, got {echo(value)}"
    assert isinstance(value, int | float)
    if not (math.isfinite(value) and low <= value <= high):
        return f"{name} must be {_KIND_NAMES[kind]} in [{low:g}, {high:g}], got {echo(value)}"
    return None


_KIND_NAMES = {int: "an integer", float: "a finite number"}


def _is_optional(name: str) -> bool:
    return type(None) in typing.get_args(typing.get_type_hints(ServerConfig)[name])


def _value_type(name: str) -> type:
    """The non-None type of a field (``int | None`` -> ``int``)."""
    hint = typing.get_type_hints(ServerConfig)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    assert isinstance(hint, type)
    return hint


def parse_text(name: str, text: str) -> Any:
    """An option's value from text (a flag or an environment variable), strictly: an integer
    option takes digits only (not ``0.9``, ``true`` or ``1e3``); ranges and finiteness are
    ``ServerConfig``'s to check, so that every source gets the same message."""
    kind = _value_type(name)
    if not text.strip():
        raise ValueError(f"{name} must not be empty")
    if kind is int and not _INTEGER.fullmatch(text.strip()):
        raise ValueError(f"{name} must be an integer, got {echo(text)}")
    try:
        return kind(text.strip()) if kind in (int, float) else kind(text)
    except ValueError:
        raise ValueError(f"{name} must be {_KIND_NAMES[kind]}, got {echo(text)}") from None


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _from_file_value(name: str, value: Any, source: str) -> Any:
    """A TOML value: text is parsed like a flag's; a typed value stays as it is, for
    ``ServerConfig`` to check (so ``port = true`` or ``port = 0.9`` are refused, not cast)."""
    try:
        return parse_text(name, value) if isinstance(value, str) else value
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read config file {path}: {exc}") from exc
    data = data.get("server", data)
    known = {f.name for f in dataclasses.fields(ServerConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {', '.join(unknown)}")
    return {name: _from_file_value(name, value, str(path)) for name, value in data.items()}


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """``THOUGHTBANK_*`` values; an empty one counts as unset, as ``VAR= command`` means."""
    found = {}
    for option in dataclasses.fields(ServerConfig):
        variable = ENV_PREFIX + option.name.upper()
        text = environ.get(variable, "")
        if text.strip():
            try:
                found[option.name] = parse_text(option.name, text)
            except ValueError as exc:
                raise ValueError(f"{variable}: {exc}") from None
    return found


def load_config(
    flags: Mapping[str, Any], environ: Mapping[str, str], config_file: Path | None = None
) -> ServerConfig:
    """Merge the sources, later ones winning: defaults, TOML file, environment, flags."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(_from_toml(config_file))
    merged.update(_from_env(environ))
    merged.update(flags)
    return ServerConfig(**merged)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per option; unset flags stay out of the namespace so lower sources apply."""
    parser.add_argument("--config", type=Path, default=None, help="TOML configuration file")
    for option in dataclasses.fields(ServerConfig):
        flag = option.metadata["flag"] or "--" + option.name.replace("_", "-")
        parser.add_argument(
            flag,
            dest=option.name,
            type=_flag_type(option.name),
            default=argparse.SUPPRESS,
            help=option.metadata["help"] + _default_note(option.default),
        )


def _default_note(default: object) -> str:
    # An option with no default (None) is unset or required; "(default: None)" tells nothing.
    return "" if default is None else f" (default: {default})"


def _flag_type(name: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return parse_text(name, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = _value_type(name).__name__  # argparse names the type in its messages
    return parse


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> ServerConfig:
    names = {f.name for f in dataclasses.fields(ServerConfig)}
    flags = {name: value for name, value in vars(args).items() if name in names}
    return load_config(flags, environ, args.config)
