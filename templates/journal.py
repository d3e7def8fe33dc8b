"""Append-only journal of finished groups: what makes a mining job durable and resumable.

The first line names the job (a fingerprint of the logs, options and distiller); each further
line is one ``JournalEntry``. Entries are written in whole lines and flushed to the operating
system before the group counts as done, so ``kill -9`` at any moment loses no finished group;
the one line a kill can tear, the last, is cut off when the journal is reopened. ``fsync`` (which
also survives a power loss) costs milliseconds, as much as distilling a group extractively, so
it runs at most every ``FSYNC_INTERVAL_S`` and on close: a power loss can cost the last second.
A later entry for a group replaces an earlier one (a failed group retried by a resumed run).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thoughtbank.templates.schema import ThoughtTemplate

JOURNAL_SUFFIX = ".journal"
FINISHED = frozenset({"ok", "skipped", "dropped"})
FSYNC_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """Outcome of one group: ``ok`` (with its template), ``skipped``, ``dropped`` or ``failed``."""

    group: str
    status: str
    reason: str = ""
    template: dict[str, Any] | None = None


def journal_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + JOURNAL_SUFFIX)


class Journal:
    """The journal of the job named by ``fingerprint``; ``resume`` keeps its finished groups."""

    def __init__(self, path: Path, fingerprint: str, resume: bool) -> None:
        self.path = path
        self._status: dict[str, str] = {}
        self._reasons: dict[str, str] = {}
        self._synced_at = time.monotonic()
        if resume and path.exists():
            self._load(fingerprint)
            self._handle = path.open("a", encoding="utf-8")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("w", encoding="utf-8")
            self._write([{"fingerprint": fingerprint}])

    def _entries(self) -> Iterator[dict[str, Any]]:
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)

    def _load(self, fingerprint: str) -> None:
        """Cut a torn last line, check the job is the same, read every group's status."""
        data = self.path.read_bytes()
        intact = data.rfind(b"\n") + 1
        if intact != len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(intact)
        entries = self._entries()
        header = next(entries, {})
        if header.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{self.path} was written by a job with other logs, options or distiller; "
                "run without --resume to start over"
            )
        for entry in entries:
            self._record(entry["group"], entry["status"], entry.get("reason", ""))

    def _record(self, group: str, status: str, reason: str) -> None:
        self._status[group] = status
        self._reasons[group] = reason

    def _write(self, lines: list[dict[str, Any]]) -> None:
        """One write of whole lines, flushed: safe from a process kill once this returns."""
        text = "".join(
            json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in lines
        )
        self._handle.write(text)
        self._handle.flush()
        if time.monotonic() - self._synced_at >= FSYNC_INTERVAL_S:
            self._sync()

    def _sync(self) -> None:
        os.fsync(self._handle.fileno())
        self._synced_at = time.monotonic()

    def append(self, entries: list[JournalEntry]) -> None:
        self._write(
            [
                {"group": e.group, "status": e.status, "reason": e.reason, "template": e.template}
                for e in entries
            ]
        )
        for entry in entries:
            self._record(entry.group, entry.status, entry.reason)

    def is_finished(self, group: str) -> bool:
        return self._status.get(group) in FINISHED

    def finished_count(self) -> int:
        return sum(1 for status in self._status.values() if status in FINISHED)

    def count(self, status: str) -> int:
        return Counter(self._status.values())[status]

    def failures(self) -> list[str]:
        """``group: reason`` of each group whose latest outcome is a failure."""
        return [
            f"{group}: {self._reasons[group]}"
            for group, status in self._status.items()
            if status == "failed"
        ]

    def templates(self) -> list[ThoughtTemplate]:
        """The template of every group whose latest outcome is ``ok``, sorted by (task, id)."""
        latest: dict[str, dict[str, Any]] = {}
        entries = self._entries()
        next(entries, None)
        for entry in entries:
            if entry["status"] == "ok":
                latest[entry["group"]] = entry["template"]
        found = (
            ThoughtTemplate.from_dict(t)
            for group, t in latest.items()
            if self._status[group] == "ok"
        )
        return sorted(found, key=lambda t: (t.task, t.id))

    def close(self) -> None:
        self._sync()
        self._handle.close()
