"""Grouping of log rows that do not fit in memory: rows spill to a temporary SQLite database.

A template needs every response to its query, and logs are rarely sorted by query, so grouping
must see all rows before the first group is complete. Holding them in a dict costs memory in
proportion to the logs; the spool writes them to an on-disk SQLite table (stdlib, no server)
keyed by (task, normalized query) and reads one group at a time back, in key order, which also
makes the order of groups independent of the order of the input files.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from itertools import groupby, islice
from pathlib import Path
from types import TracebackType

from thoughtbank.normalize import normalize_query
from thoughtbank.templates.schema import LogRecord
from thoughtbank.templates.selection import QueryGroup

INSERT_BATCH_ROWS = 5000


class GroupSpool:
    """Rows in, groups out: ``add_all(records)`` then iterate ``groups()``."""

    def __init__(self, directory: Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="thoughtbank-spool-", dir=directory)
        self._db = sqlite3.connect(Path(self._tmp.name) / "rows.sqlite")
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE rows (task TEXT, query TEXT, seq INTEGER PRIMARY KEY, query_id TEXT,"
            " record TEXT);"
        )
        self.rows = 0

    def add_all(self, records: Iterable[LogRecord]) -> None:
        """Spill ``records`` in batches; the key index is built once all rows are in."""
        iterator = iter(records)
        while batch := list(islice(iterator, INSERT_BATCH_ROWS)):
            self._db.executemany(
                "INSERT INTO rows (task, query, query_id, record) VALUES (?, ?, ?, ?)",
                [(r.task_name, normalize_query(r.query), r.query_id, r.to_json()) for r in batch],
            )
            self.rows += len(batch)
        self._db.execute("CREATE INDEX IF NOT EXISTS by_group ON rows (task, query, seq)")
        self._db.commit()

    def group_count(self) -> int:
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM (SELECT DISTINCT task, query FROM rows)"
            ).fetchone()[0]
        )

    def query_id_count(self) -> int:
        """Distinct query ids: more than groups where a log repeats a query under two ids."""
        return int(
            self._db.execute(
                "SELECT COUNT(DISTINCT query_id) FROM rows WHERE query_id != ''"
            ).fetchone()[0]
        )

    def groups(self) -> Iterator[QueryGroup]:
        """Each (task, normalized query) with its rows in input order; groups in key order."""
        cursor = self._db.execute("SELECT task, query, record FROM rows ORDER BY task, query, seq")
        for (task, query), rows in groupby(cursor, key=lambda row: (row[0], row[1])):
            records = tuple(LogRecord(*json.loads(row[2])) for row in rows)
            yield QueryGroup(task=task, query=query, records=records)

    def close(self) -> None:
        self._db.close()
        self._tmp.cleanup()

    def __enter__(self) -> GroupSpool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
