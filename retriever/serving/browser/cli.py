"""``thoughtbank browse``: the template browser on one index's live version.

Imports nothing of the web libraries until the command runs, so that an install without the
``ui`` extra still lists the command and says what to install.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from thoughtbank.cli_common import LOOPBACK, MAX_PORT, Commands, existing_file
from thoughtbank.extras import require_ui

DEFAULT_PORT = 8080


def port_number(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be a port in [0, {MAX_PORT}], got {text!r}")
    return int(text)


def cmd_browse(args: argparse.Namespace) -> int:
    require_ui("`thoughtbank browse`")
    from thoughtbank.retriever.serving.access import AccessTable
    from thoughtbank.retriever.serving.browser.app import Shelf
    from thoughtbank.retriever.serving.browser.run import BrowserServer
    from thoughtbank.retriever.serving.engine import RetrievalEngine
    from thoughtbank.retriever.types import DEFAULT_NAMESPACE

    if not args.index.is_dir():
        raise FileNotFoundError(f"index directory {args.index} does not exist")
    access = AccessTable.load(args.auth_token_file, None)
    engine = RetrievalEngine.open(args.index)
    server = BrowserServer(
        Shelf(lambda: {DEFAULT_NAMESPACE: engine}, lambda: access), args.host, args.port
    )
    print(f"thoughtbank: browsing {engine.version} at {server.url}", flush=True)
    server.run()
    return 0


def add_commands(commands: Commands) -> None:
    browse = commands.add_parser(
        "browse",
        help="browse an index's templates and try queries in a web page",
        description="Browse an index's templates and try queries in a local web page (the "
        "live version when it starts; read-only).",
        epilog="examples:\n  thoughtbank browse --index INDEX_DIR\n"
        "  thoughtbank browse --index INDEX_DIR --port 8081",
    )
    browse.add_argument("--index", type=Path, required=True, help="index directory")
    browse.add_argument("--host", default=LOOPBACK, help="address to bind")
    browse.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="port to bind; 0 picks a free one"
    )
    browse.add_argument(
        "--auth-token-file",
        type=existing_file,
        default=None,
        help="file holding a bearer token the page asks for (for a --host other than loopback)",
    )
    browse.set_defaults(func=cmd_browse)
