"""Streaming readers for FusionBench-schema logs (JSONL, JSONL.gz, CSV).

Each row is validated on its own: a bad row is reported to a ``RejectSink`` with its file, line
and reason and skipped, so one malformed row never costs the good rows around it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from thoughtbank.templates.schema import LogRecord

REQUIRED_COLUMNS = ("task_name", "query", "llm", "response", "performance")
TEXT_COLUMNS = ("task_name", "query", "llm", "response")


@dataclass(frozen=True, slots=True)
class Reject:
    """A row (or the rest of a file) that could not be used, and why."""

    file: str
    line: int
    reason: str


@dataclass
class RejectSink:
    """Counts rejects and appends them as JSON lines to ``path`` (when given)."""

    path: Path | None = None
    count: int = 0
    _handle: TextIO | None = field(default=None, repr=False)

    def add(self, reject: Reject) -> None:
        self.count += 1
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8")
        self._handle.write(json.dumps({"file": reject.file, "line": reject.line,
                                       "reason": reject.reason}) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class RowError(ValueError):
    """A row failed validation; the message is the reject reason."""


def _optional_float(row: Mapping[str, Any], column: str) -> float | None:
    value = row.get(column)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(f"{column} is not a number: {value!r}") from None
    if math.isnan(number):
        return None
    if math.isinf(number) or number < 0:
        raise RowError(f"{column} out of range: {value!r}")
    return number


def record_from_row(row: Any, column_map: Mapping[str, str] | None = None) -> LogRecord:
    """Validate one parsed row and build a ``LogRecord``; raise ``RowError`` on bad input.

    ``column_map`` maps schema names to the file's own column names (``query -> prompt``).
    """
    if not isinstance(row, Mapping):
        raise RowError(f"row is not an object but {type(row).__name__}")
    if column_map:
        row = {**row, **{name: row[src] for name, src in column_map.items() if src in row}}
    missing = [c for c in REQUIRED_COLUMNS if row.get(c) is None]
    if missing:
        raise RowError(f"missing column(s): {', '.join(missing)}")
    for column in TEXT_COLUMNS:
        if not isinstance(row[column], str):
            raise RowError(f"{column} is not a string but {type(row[column]).__name__}")
        if not row[column].strip():
            raise RowError(f"{column} is empty")
    performance = _optional_float(row, "performance")
    if performance is None or performance > 1.0:
        raise RowError(f"performance must be a number in [0, 1], got {row['performance']!r}")
    judge = _optional_float(row, "llm_judge")
    if judge is not None and judge > 1.0:
        raise RowError(f"llm_judge must be in [0, 1], got {row['llm_judge']!r}")
    ground_truth = row.get("ground_truth")
    return LogRecord(
        task_name=row["task_name"].strip(),
        query=row["query"],
        llm=row["llm"].strip(),
        response=row["response"],
        performance=performance,
        query_id="" if row.get("query_id") is None else str(row["query_id"]),
        cost=_optional_float(row, "cost"),
        llm_judge=judge,
        ground_truth="" if ground_truth is None else str(ground_truth),
    )


def _open_text(path: Path) -> IO[str]:
    raw: IO[bytes] = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


def _iter_jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object or RowError) for each non-blank line."""
    with _open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, RowError(f"not valid JSON: {exc.msg}")


def _iter_csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (starting line number, row dict) for each CSV record (fields may span lines)."""
    csv.field_size_limit(sys.maxsize)
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        line = reader.line_num + 1
        for row in reader:
            if None in row:
                yield line, RowError("more fields than the header has")
            else:
                yield line, row
            line = reader.line_num + 1


def _row_source(path: Path) -> Iterator[tuple[int, Any]]:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return _iter_jsonl_rows(path)
    if name.endswith(".csv"):
        return _iter_csv_rows(path)
    raise ValueError(f"{path}: unsupported log format (expected .jsonl, .jsonl.gz or .csv)")


def iter_log_records(
    paths: list[Path],
    rejects: RejectSink,
    column_map: Mapping[str, str] | None = None,
) -> Iterator[LogRecord]:
    """Stream valid records from every file; report bad rows and damaged files to ``rejects``."""
    for path in paths:
        line = 0
        try:
            for line, row in _row_source(path):
                try:
                    if isinstance(row, RowError):
                        raise row
                    yield record_from_row(row, column_map)
                except RowError as exc:
                    rejects.add(Reject(str(path), line, str(exc)))
        except (OSError, EOFError, UnicodeDecodeError, csv.Error, ValueError) as exc:
            rejects.add(Reject(str(path), line + 1, f"file unreadable from here on: {exc}"))
