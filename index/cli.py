"""``thoughtbank index ...``: build, update, inspect, verify, roll back and prune an index.

Commands that write a version print a JSON summary on stdout and their progress on stderr
(stage messages always, progress bars when stderr is a terminal).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from thoughtbank.cli_common import (
    DEFAULT_EMBED_BATCH_SIZE,
    Commands,
    add_embedding_flags,
    add_engine_flags,
    check_engine_flags,
    positive_int,
    print_safe,
    quiet_model_loading,
)
from thoughtbank.index.builder import EMBED_FIELDS
from thoughtbank.index.faiss_backend import INDEX_TYPES

if TYPE_CHECKING:
    from thoughtbank.index.artifact import IndexManifest
    from thoughtbank.index.embedder import Embedder

DEVICES = ("auto", "cpu", "cuda")
# What mining reads and templates never are: such an input is a log given to the wrong stage.
LOG_SUFFIXES = (".gz", ".csv", ".parquet")
BUILD_EXAMPLES = """examples:
  thoughtbank index build templates.jsonl --out INDEX_DIR
  thoughtbank index build templates.jsonl --out INDEX_DIR --type hnsw --device cuda
  thoughtbank index build templates.jsonl --out INDEX_DIR --embed query+template

Building into a live index makes the new version live; the old one stays for `index rollback`."""


def _report_progress() -> bool:
    """Send the index stage's messages to stderr; whether to draw progress bars as well."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("thoughtbank.index").setLevel(logging.INFO)
    quiet_model_loading(sys.stderr.isatty())
    return sys.stderr.isatty()


def templates_file(text: str) -> Path:
    """A templates JSONL written by ``thoughtbank mine``: a file, and not a mining log."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a directory, not a templates JSONL file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no templates file {path}")
    if path.name.lower().endswith(LOG_SUFFIXES) or _first_line_is_a_log_row(path):
        raise argparse.ArgumentTypeError(
            f"{path} looks like a mining log, not templates: run `thoughtbank mine {path} "
            "--out templates.jsonl` and index templates.jsonl"
        )
    return path


def _first_line_is_a_log_row(path: Path) -> bool:
    from thoughtbank.templates.readers import REQUIRED_COLUMNS

    with path.open("rb") as handle:
        first = handle.readline(1 << 20)
    try:
        row = json.loads(first)
    except ValueError:
        return False
    return isinstance(row, dict) and "text" not in row and set(REQUIRED_COLUMNS) <= set(row)


def _index_interrupt_note(args: argparse.Namespace) -> str:
    """What an interrupted writer kept: versions switch live atomically in the last step."""
    index_dir = getattr(args, "out", None) or args.index
    return (
        "a new version goes live only in the command's last step; "
        f"`thoughtbank index list --index {index_dir}` shows which version is live"
    )


def _on_engine(embedder: Embedder, args: argparse.Namespace) -> Embedder:
    """``embedder``, or with ``--engine ray`` its vectors computed by a Ray actor pool."""
    check_engine_flags(args)
    if args.engine == "local":
        return embedder
    from thoughtbank.index.ray_embedder import RayPoolEmbedder

    return RayPoolEmbedder(
        embedder, args.ray_address, args.ray_actors, args.device, args.batch_size
    )


def _print_version(manifest: IndexManifest, **extra: object) -> None:
    print(
        json.dumps(
            {
                "version": manifest.version,
                "count": manifest.count,
                "index_type": manifest.index_type,
                "task_counts": manifest.task_counts,
                **extra,
            },
            indent=2,
        )
    )


def cmd_build(args: argparse.Namespace) -> int:
    from thoughtbank.index import IndexSettings, build_index, load_embedder
    from thoughtbank.templates.store import read_templates

    show_progress = _report_progress()
    params = {
        "m": args.hnsw_m,
        "ef_construction": args.ef_construction,
        "ef_search": args.ef_search,
        "nlist": args.nlist,
        "nprobe": args.nprobe,
    }
    settings = IndexSettings(
        args.type, {k: v for k, v in params.items() if v is not None}, args.embed
    )
    embedder = _on_engine(
        load_embedder(args.model, args.backend, args.precision, args.device, args.batch_size), args
    )
    manifest = build_index(
        list(read_templates(args.templates)),
        args.out,
        embedder,
        show_progress=show_progress,
        settings=settings,
        device=args.device,
        sources=[args.templates],
    )
    if manifest.parent:
        print_safe(
            f"replaced live version {manifest.parent} with {manifest.version} in {args.out} "
            f"(undo: thoughtbank index rollback {manifest.parent} --index {args.out})",
            file=sys.stderr,
        )
    _print_version(manifest, index_dir=str(args.out))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from thoughtbank.index import add_templates, manifest_embedder
    from thoughtbank.templates.store import read_templates

    show_progress = _report_progress()
    result = add_templates(
        args.index,
        list(read_templates(args.templates)),
        lambda live: _on_engine(
            manifest_embedder(live, args.backend, args.precision, args.device, args.batch_size),
            args,
        ),
        device=args.device,
        show_progress=show_progress,
        sources=[args.templates],
    )
    _print_version(
        result.manifest,
        added=result.added,
        replaced=result.replaced,
        unchanged=result.unchanged,
        new_version=result.created_version,
    )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from thoughtbank.index import remove_templates

    _report_progress()
    result = remove_templates(args.index, args.ids)
    if result.not_found:
        print_safe(
            f"not in the index, nothing done for them: {', '.join(result.not_found)}",
            file=sys.stderr,
        )
    _print_version(result.manifest, removed=result.removed, not_found=list(result.not_found))
    return 0


def _live_version(index_dir: Path) -> str | None:
    """The version CURRENT names, or None after printing why CURRENT names none."""
    from thoughtbank.index import IndexDamagedError, current_version

    try:
        return current_version(index_dir)
    except IndexDamagedError as exc:
        print(exc)
        return None


def cmd_list(args: argparse.Namespace) -> int:
    """Every version with its manifest's summary; exit 1 if CURRENT or a manifest is damaged."""
    from thoughtbank.index import IndexDamagedError, list_versions
    from thoughtbank.index.artifact import read_manifest, version_dir

    live = _live_version(args.index)
    damaged = live is None
    for version in list_versions(args.index):
        marker = "*" if version == live else " "
        try:
            manifest = read_manifest(version_dir(args.index, version))
        except IndexDamagedError as exc:
            damaged = True
            print(f"{marker} {exc}")
            continue
        print(
            f"{marker} {version}  {manifest.created_at}  {manifest.count:>9} templates  "
            f"{manifest.index_type:<4}  {manifest.embedder}"
        )
    return 1 if damaged else 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from thoughtbank.index import rollback

    manifest = rollback(args.index, args.version)
    print(f"version {manifest.version} ({manifest.count} templates) is live")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Load each version as the server would; exit 1 if any (or CURRENT) is damaged."""
    from thoughtbank.index import IndexDamagedError, list_versions, load_index

    live = _live_version(args.index)
    damaged = live is None
    versions = list_versions(args.index) if args.all else [live] if live else []
    for version in versions:
        try:
            loaded = load_index(args.index, version)
        except IndexDamagedError as exc:
            damaged = True
            print(exc)
            continue
        print(f"ok {version} ({loaded.manifest.count} templates)")
    return 1 if damaged else 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete old versions; exit 1 if a kept version (or CURRENT) is damaged."""
    from thoughtbank.index import prune

    result = prune(args.index, args.keep)
    print(f"removed {len(result.removed)} version(s)" + "".join(f"\n  {v}" for v in result.removed))
    for damage in result.damaged.values():
        print(damage)
    return 1 if result.damaged else 0


def _add_build(commands: Commands) -> None:
    build = commands.add_parser(
        "build", help="embed templates into a new index version", epilog=BUILD_EXAMPLES
    )
    build.add_argument(
        "templates", type=templates_file, help="templates JSONL from `thoughtbank mine`"
    )
    build.add_argument(
        "--out", type=Path, required=True, help="index directory (created, or a new version)"
    )
    build.add_argument(
        "--type",
        default="auto",
        choices=["auto", *INDEX_TYPES],
        help="auto: exact (flat) up to 50k templates, hnsw above",
    )
    build.add_argument(
        "--embed", default="query", choices=EMBED_FIELDS, help="what is embedded for each template"
    )
    build.add_argument(
        "--model",
        default="bundled:all-MiniLM-L6-v2",
        help="sentence-transformers model: local path or hub name",
    )
    build.add_argument(
        "--device",
        default="cpu",
        choices=DEVICES,
        help="for embedding and FAISS; cuda falls back to cpu with a message",
    )
    add_embedding_flags(build, "auto")
    build.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_EMBED_BATCH_SIZE,
        help="texts per encode call",
    )
    add_engine_flags(build, "embed")
    build.add_argument("--hnsw-m", type=positive_int, help="hnsw: links per node (32)")
    build.add_argument("--ef-construction", type=positive_int, help="hnsw: build depth (40)")
    build.add_argument("--ef-search", type=positive_int, help="hnsw: default search depth (128)")
    build.add_argument("--nlist", type=positive_int, help="ivf: inverted lists (4 sqrt(n))")
    build.add_argument("--nprobe", type=positive_int, help="ivf: lists searched (max(8, nlist/16))")
    build.set_defaults(func=cmd_build, interrupt_note=_index_interrupt_note)


def _add_updates(commands: Commands) -> None:
    add = commands.add_parser("add", help="add or replace templates as a new live version")
    add.add_argument("templates", type=templates_file, help="templates JSONL")
    add.add_argument("--index", type=Path, required=True, help="index directory")
    add.add_argument("--device", default="cpu", choices=DEVICES, help="for embedding and FAISS")
    add_embedding_flags(add, None)
    add.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_EMBED_BATCH_SIZE,
        help="texts per encode call",
    )
    add_engine_flags(add, "embed")
    add.set_defaults(func=cmd_add, interrupt_note=_index_interrupt_note)
    remove = commands.add_parser("remove", help="remove templates as a new live version")
    remove.add_argument(
        "--ids", nargs="+", required=True, help="template ids to remove (unknown ones are reported)"
    )
    remove.add_argument("--index", type=Path, required=True, help="index directory")
    remove.set_defaults(func=cmd_remove, interrupt_note=_index_interrupt_note)


def _add_maintenance(commands: Commands) -> None:
    listing = commands.add_parser("list", help="list versions (* marks the live one)")
    listing.add_argument("--index", type=Path, required=True, help="index directory")
    listing.set_defaults(func=cmd_list)
    rollback = commands.add_parser("rollback", help="make an earlier version live again")
    rollback.add_argument("version", help="version name from `index list`")
    rollback.add_argument("--index", type=Path, required=True, help="index directory")
    rollback.set_defaults(func=cmd_rollback, interrupt_note=_index_interrupt_note)
    verify = commands.add_parser("verify", help="check checksums; exit 1 on any damage")
    verify.add_argument("--index", type=Path, required=True, help="index directory")
    verify.add_argument("--all", action="store_true", help="every version, not only the live one")
    verify.set_defaults(func=cmd_verify)
    prune = commands.add_parser(
        "prune", help="delete old versions (never the live nor the newest intact one)"
    )
    prune.add_argument("--keep", type=positive_int, required=True, help="newest versions kept")
    prune.add_argument("--index", type=Path, required=True, help="index directory")
    prune.set_defaults(func=cmd_prune, interrupt_note=_index_interrupt_note)


def add_commands(commands: Commands) -> None:
    index = commands.add_parser("index", help="build and manage the template index")
    index_commands = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    _add_build(index_commands)
    _add_updates(index_commands)
    _add_maintenance(index_commands)
