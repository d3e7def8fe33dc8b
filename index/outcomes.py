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

import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

OUTCOMES_FILE = "outcomes.sqlite3"
MAX_TEMPLATES_PER_OUTCOME = 100
MAX_OUTCOME_TEXT_CHARS = 32_768
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
CREATE TABLE IF NOT EXISTS outcome_templates (
    outcome_id TEXT NOT NULL REFERENCES outcomes (outcome_id),
    template_id TEXT NOT NULL,
    PRIMARY KEY (template_id, outcome_id)
);
"""


class OutcomeError(ValueError):
    """An outcome that cannot be recorded; the message names the field and why."""


@dataclass(frozen=True)
class OutcomeRecord:
    """One answer's score, with the templates that were in its prompt."""

    outcome_id: str  # the caller's idempotency key: a retry with the same id is not counted
    template_ids: tuple[str, ...]
    score: float  # in [0, 1]
    query: str = ""
    baseline_score: float | None = None  # the same query answered without templates
    task: str = ""
    index_version: str = ""
    model: str = ""  # the LLM that answered

    def check(self) -> None:
        """Raise ``OutcomeError`` naming the first field that is missing or out of range."""
        if not self.outcome_id:
            raise OutcomeError("outcome_id is required")
        if not self.template_ids:
            raise OutcomeError("template_ids is empty: name the templates that were in the prompt")
        if len(self.template_ids) > MAX_TEMPLATES_PER_OUTCOME:
            raise OutcomeError(
                f"template_ids holds {len(self.template_ids)} ids, at most "
                f"{MAX_TEMPLATES_PER_OUTCOME}"
            )
        _check_score("score", self.score)
        if self.baseline_score is not None:
            _check_score("baseline_score", self.baseline_score)
        texts = {
            "outcome_id": self.outcome_id,
            "query": self.query,
            "task": self.task,
            "index_version": self.index_version,
            "model": self.model,
        }
        texts.update({f"template_ids[{n}]": t for n, t in enumerate(self.template_ids)})
        for field, text in texts.items():
            if len(text) > MAX_OUTCOME_TEXT_CHARS:
                raise OutcomeError(
                    f"{field} is {len(text)} characters, at most {MAX_OUTCOME_TEXT_CHARS}"
                )
        if any(not t for t in self.template_ids):
            raise OutcomeError("template_ids holds an empty id")


def _check_score(field: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise OutcomeError(f"{field} must be a number in [0, 1], not {value!r}")


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

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> OutcomeStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
