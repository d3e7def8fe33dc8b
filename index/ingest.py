"""New logs into a served index without a rebuild: mine each file, then add its templates as a
new version (as ``index add`` does), which running servers pick up by hot reload.

Each file's work lives in ``INDEX_DIR/ingest/``: its templates file (mined resumably, with the
mining journal beside it, so an interrupted file goes on where it stopped) and one ledger line
per finished file, keyed by the file's sha256 and fsynced once its version is live. A restart
reads the ledger: a finished file is not ingested again (even renamed), an unfinished one is
finished. A crash between the new version and its ledger line re-adds the same templates,
which ``add_templates`` finds unchanged.

A watched folder takes complete files only: a file is ingested once its size and modification
time have not changed for ``settle_s`` seconds, and names starting with ``.`` or ending in
``.tmp`` or ``.part`` (files still being written by the common tools) are skipped. Writing a
file elsewhere and renaming it in is the safe way to hand one over. A file that is not a log
(an unknown format) is reported and left alone until it changes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from thoughtbank.files import sha256_file
from thoughtbank.index.builder import add_templates
from thoughtbank.templates import (
    DistillEngine,
    Distiller,
    EmbedFunction,
    MiningOptions,
    mine_templates,
)
from thoughtbank.templates.store import read_templates

log = logging.getLogger("thoughtbank.ingest")

INGEST_DIR = "ingest"
LEDGER_FILE = "ingested.jsonl"
IN_PROGRESS_SUFFIXES = (".tmp", ".part")


@dataclass(frozen=True)
class IngestedFile:
    """One log file's ingest: how many templates it gave and the version they went into."""

    name: str
    sha256: str
    templates: int
    added: int
    version: str


class Ingester:
    """Mines log files into ``index_dir``'s live version, each file once."""

    def __init__(
        self,
        index_dir: Path,
        distiller: Distiller | DistillEngine,
        options: MiningOptions,
        embed: EmbedFunction | None = None,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.work_dir = self.index_dir / INGEST_DIR
        self.work_dir.mkdir(exist_ok=True)
        self._distiller = distiller
        self._options = dataclasses.replace(options, resume=True)
        self._embed = embed
        self._done = {entry["sha256"] for entry in self._ledger()}

    def _ledger(self) -> Iterable[dict[str, object]]:
        path = self.work_dir / LEDGER_FILE
        if not path.exists():
            return []
        # A line cut by a crash mid-write is not a finished file: that file is ingested again.
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries

    def ingest(self, path: Path) -> IngestedFile | None:
        """Mine ``path`` and add its templates as a new live version; None when a file with the
        same content was ingested before."""
        digest = sha256_file(path)
        if digest in self._done:
            return None
        out = self.work_dir / f"{digest[:16]}.templates.jsonl"
        summary = mine_templates([path], out, self._distiller, self._options, self._embed)
        templates = list(read_templates(out)) if summary.templates else []
        result = add_templates(self.index_dir, templates, sources=[path])
        done = IngestedFile(
            path.name,
            digest,
            len(templates),
            result.added + result.replaced,
            result.manifest.version,
        )
        self._append(done)
        return done

    def _append(self, done: IngestedFile) -> None:
        line = json.dumps(dataclasses.asdict(done), sort_keys=True) + "\n"
        with (self.work_dir / LEDGER_FILE).open("a", encoding="utf-8") as ledger:
            ledger.write(line)
            ledger.flush()
            os.fsync(ledger.fileno())
        self._done.add(done.sha256)

    def watch(
        self,
        folder: Path,
        interval_s: float,
        settle_s: float,
        on_ingested: Callable[[IngestedFile], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Ingest every complete file that appears in ``folder`` until ``should_stop``."""
        since: dict[tuple[Path, int, int], float] = {}  # (path, size, mtime): first seen
        handled: set[tuple[Path, int, int]] = set()  # ingested or found done: not hashed again
        while not should_stop():
            for path in sorted(p for p in Path(folder).iterdir() if _may_be_complete(p)):
                stat = path.stat()
                shape = (path, stat.st_size, stat.st_mtime_ns)
                if shape in handled:
                    continue
                if time.monotonic() - since.setdefault(shape, time.monotonic()) < settle_s:
                    continue
                handled.add(shape)
                try:
                    done = self.ingest(path)
                except ValueError as exc:  # not a log file: say so, keep watching
                    log.error("%s: not ingested: %s", path, exc)
                    continue
                if done is not None:
                    on_ingested(done)
            time.sleep(interval_s)


def _may_be_complete(path: Path) -> bool:
    name = path.name
    return path.is_file() and not name.startswith(".") and not name.endswith(IN_PROGRESS_SUFFIXES)
