"""Outcomes: how the answers to prompts holding some templates scored, kept per index directory.

One SQLite file, ``INDEX_DIR/outcomes.sqlite3``, shared by every version of the index (template
ids are stable across versions) and by every process on the host that serves or edits it:
SQLite's file locking lets several servers and the ``feedback`` commands write without losing a
write, which a file of our own would have to re-invent. WAL mode lets readers go on while one
writes; ``synchronous=FULL`` makes a commit durable before ``record`` returns, so an outcome
acknowledged to a client survives kill -9 and power loss. ``record`` takes a batch, so that
outcomes arriving together share one commit (one fsync) instead of paying one each.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from thoughtbank.index.usefulness import TemplateUse
from thoughtbank.schema import OutcomeRecord

OUTCOMES_FILE = "outcomes.sqlite3"
# Another process holding the write lock (a long import) is waited for this long, not failed.
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    outcome_id TEXT PRIMARY KEY,
    recorded_at REAL NOT NULL,
    query TEXT NOT NULL,
    score REAL NOT NULL,
    baseline_score REAL,
    task TEXT NOT NULL,
    index_version TEXT NOT NULL,
    model TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS overrides (
    template_id TEXT PRIMARY KEY,
    retired INTEGER NOT NULL,
    set_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outcome_templates (
    outcome_id TEXT NOT NULL REFERENCES outcomes (outcome_id),
    template_id TEXT NOT NULL,
    PRIMARY KEY (template_id, outcome_id)
);
"""


@dataclass(frozen=True)
class TemplateOutcomes:
    """What the store knows of one template: its uses and how their answers scored."""

    template_id: str
    uses: int
    mean_score: float
    #: Mean of (score - baseline_score) over the uses that gave a baseline; None without any.
    mean_lift_vs_baseline: float | None
    uses_with_baseline: int


class OutcomeStore:
    """The outcomes of one index directory; safe to share between threads and processes."""

    def __init__(self, index_dir: Path) -> None:
        """Nothing is opened or created until the first call: a server whose index folder is
        read-only serves as before until someone records an outcome."""
        self.path = Path(index_dir) / OUTCOMES_FILE
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection, opened on first use (callers hold ``_lock``)."""
        if self._connection is None:
            db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._connection = db
        return self._connection

    def record(self, outcomes: Sequence[OutcomeRecord]) -> list[bool]:
        """Check and store ``outcomes`` in one durable commit; per outcome, whether it is new
        (False: its ``outcome_id`` was recorded before, and it is not counted again).
        ``OutcomeError`` for an invalid one, and then none of them is stored."""
        for outcome in outcomes:
            outcome.check()
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                recorded = [self._insert(outcome, now) for outcome in outcomes]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return recorded

    def _insert(self, outcome: OutcomeRecord, now: float) -> bool:
        inserted = self._db.execute(
            "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                outcome.outcome_id,
                now,
                outcome.query,
                float(outcome.score),
                outcome.baseline_score,
                outcome.task,
                outcome.index_version,
                outcome.model,
            ),
        ).rowcount
        if inserted:
            self._db.executemany(
                "INSERT INTO outcome_templates VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(outcome.outcome_id, t) for t in dict.fromkeys(outcome.template_ids)],
            )
        return bool(inserted)

    def count(self) -> int:
        """How many outcomes are stored."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outcomes").fetchone()[0])

    def outcome_ids(self) -> set[str]:
        """Every stored outcome id."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT outcome_id FROM outcomes")}

    def template_outcomes(
        self, template_ids: Iterable[str] | None = None
    ) -> list[TemplateOutcomes]:
        """Per template with at least one outcome (or only those of ``template_ids``)."""
        query = """
            SELECT t.template_id, count(*), avg(o.score),
                   avg(o.score - o.baseline_score), count(o.baseline_score)
            FROM outcome_templates t JOIN outcomes o USING (outcome_id)
            GROUP BY t.template_id ORDER BY t.template_id
        """
        with self._lock:
            rows = self._db.execute(query).fetchall()
        wanted = None if template_ids is None else set(template_ids)
        return [
            TemplateOutcomes(row[0], int(row[1]), float(row[2]), row[3], int(row[4]))
            for row in rows
            if wanted is None or row[0] in wanted
        ]

    def template_uses(self) -> list[TemplateUse]:
        """Every (template, outcome) pair: what ``estimate_usefulness`` reads."""
        query = """
            SELECT t.template_id, o.task, o.score, o.baseline_score
            FROM outcome_templates t JOIN outcomes o USING (outcome_id)
        """
        with self._lock:
            return [TemplateUse(*row) for row in self._db.execute(query)]

    def queried_uses(self) -> list[tuple[str, TemplateUse]]:
        """The (query, use) pairs of the outcomes that gave their query."""
        query = """
            SELECT o.query, t.template_id, o.task, o.score, o.baseline_score
            FROM outcome_templates t JOIN outcomes o USING (outcome_id)
            WHERE o.query != ''
        """
        with self._lock:
            return [(row[0], TemplateUse(*row[1:])) for row in self._db.execute(query)]

    def set_retired(self, template_ids: Iterable[str], retired: bool) -> None:
        """Overrule the estimate for ``template_ids``: retired (not served) or served."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO overrides VALUES (?, ?, ?) ON CONFLICT (template_id) "
                "DO UPDATE SET retired = excluded.retired, set_at = excluded.set_at",
                [(t, int(retired), now) for t in template_ids],
            )
            self._db.execute("COMMIT")

    def overrides(self) -> dict[str, bool]:
        """Templates an operator retired (True) or restored (False), by id."""
        with self._lock:
            rows = self._db.execute("SELECT template_id, retired FROM overrides").fetchall()
        return {template_id: bool(retired) for template_id, retired in rows}

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> OutcomeStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
