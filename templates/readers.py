"""Streaming readers for FusionBench-schema logs (JSONL, JSONL.gz, CSV, Parquet).

Each row is validated on its own: a bad row is reported to a ``RejectSink`` with its file, line
and reason and skipped, so one malformed row never costs the good rows around it. Damage that
ends a file (a truncated gzip stream, CSV quoting left open) is reported at the line where it
starts; the rows before it are kept and the other files are still read. Files are read in
batches or line by line, never whole, so logs larger than memory stream through. Text is decoded
line by line, so bytes that are not UTF-8 cost only their own row. An exact duplicate of an
earlier row, a field over the size limit and a file without rows are reported too.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

import pyarrow
import pyarrow.parquet

from thoughtbank.files import open_bytes
from thoughtbank.templates.schema import LogRecord

REQUIRED_COLUMNS = ("task_name", "query", "llm", "response", "performance")
TEXT_COLUMNS = ("task_name", "query", "llm", "response")
#: FusionBench's CSV layout has no ``query_id``; its ``task_id`` ("gsm8k-0") identifies the query.
QUERY_ID_COLUMNS = ("query_id", "task_id")
#: Every column the reader uses: what ``--columns`` may map a file's own columns to.
SCHEMA_COLUMNS = (
    *REQUIRED_COLUMNS,
    *QUERY_ID_COLUMNS,
    "cost",
    "llm_judge",
    "ground_truth",
    "metric",
)
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
SUPPORTED_SUFFIXES = (*JSONL_SUFFIXES, ".csv", ".parquet")
PARQUET_BATCH_ROWS = 8192
#: Largest field accepted, in UTF-8 bytes: a bigger one is a runaway log entry, not a response.
DEFAULT_MAX_FIELD_BYTES = 1024 * 1024
#: The longest UTF-8 encoding of one character: a text of n characters has at most 4n bytes.
MAX_UTF8_BYTES_PER_CHAR = 4
#: What a damaged stream raises: truncated gzip (EOFError), bad CRC (OSError), corrupt deflate
#: data (zlib.error).
STREAM_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True, slots=True)
class Reject:
    """A row, or a whole file (``ends_file``: its rest, or all of it), that could not be used."""

    file: str
    line: int
    reason: str
    ends_file: bool = False


@dataclass
class RejectSink:
    """Counts rejected rows and damaged files; appends each as a JSON line to ``path``."""

    path: Path | None = None
    count: int = 0
    damaged_files: int = 0
    _handle: TextIO | None = field(default=None, repr=False)

    def add(self, reject: Reject) -> None:
        if reject.ends_file:
            self.damaged_files += 1
        else:
            self.count += 1
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8")
        self._handle.write(
            json.dumps({"file": reject.file, "line": reject.line, "reason": reject.reason}) + "\n"
        )
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class RowError(ValueError):
    """A row failed validation; the message is the reject reason."""


class FileDamage(Exception):
    """The rest of a file cannot be read; ``line`` is where the damage starts."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line


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


def _performance(row: Mapping[str, Any], scale: float) -> float:
    """Performance as a fraction: logs that score on another scale (0-100) declare it."""
    performance = _optional_float(row, "performance")
    if performance is None or performance > scale:
        raise RowError(
            f"performance must be a number in [0, {scale:g}], got {row['performance']!r}"
        )
    return performance / scale


def _check_field_sizes(row: Mapping[str, Any], max_field_bytes: int) -> None:
    """Reject a row with an oversized text field before any copy of it is made."""
    for column, value in row.items():
        if not isinstance(value, str) or len(value) * MAX_UTF8_BYTES_PER_CHAR <= max_field_bytes:
            continue
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > max_field_bytes:
            raise RowError(f"{column} is {size:,} bytes, over the {max_field_bytes:,}-byte limit")


def _query_id(row: Mapping[str, Any]) -> str:
    value = next((row[c] for c in QUERY_ID_COLUMNS if row.get(c) not in (None, "")), "")
    return str(value)


def record_from_row(
    row: Any,
    column_map: Mapping[str, str] | None = None,
    performance_scale: float = 1.0,
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
) -> LogRecord:
    """Validate one parsed row and build a ``LogRecord``; raise ``RowError`` on bad input.

    ``column_map`` maps schema names to the file's own column names (``query -> prompt``);
    ``performance_scale`` is the top of the file's performance scale (1 or, say, 100);
    ``max_field_bytes`` is the largest text field accepted, in UTF-8 bytes.
    """
    if not isinstance(row, Mapping):
        raise RowError(f"row is not an object but {type(row).__name__}")
    _check_field_sizes(row, max_field_bytes)
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
    performance = _performance(row, performance_scale)
    judge = _optional_float(row, "llm_judge")
    if judge is not None and judge > 1.0:
        raise RowError(f"llm_judge must be in [0, 1], got {row['llm_judge']!r}")
    ground_truth = row.get("ground_truth")
    metric = row.get("metric")
    if metric is not None and not isinstance(metric, str):
        raise RowError(f"metric is not a string but {type(metric).__name__}")
    return LogRecord(
        task_name=row["task_name"].strip(),
        query=row["query"],
        llm=row["llm"].strip(),
        response=row["response"],
        performance=performance,
        query_id=_query_id(row),
        cost=_optional_float(row, "cost"),
        llm_judge=judge,
        ground_truth="" if ground_truth is None else str(ground_truth),
        metric=(metric or "").strip(),
    )


def _not_utf8(exc: UnicodeDecodeError) -> str:
    return f"not UTF-8 text: {exc.reason} at byte {exc.start}"


def _iter_jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object or RowError) for each non-blank line.

    Lines are decoded one by one so that a line with bad bytes is one bad row.
    """
    with open_bytes(path) as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield number, RowError(_not_utf8(exc))
            except json.JSONDecodeError as exc:
                yield number, RowError(f"not valid JSON: {exc.msg}")


def _decoded_lines(handle: IO[bytes], bad_lines: dict[int, str]) -> Iterator[str]:
    """Decode ``handle`` line by line; put the reason of each line that is not UTF-8 into
    ``bad_lines`` by line number.

    Such a line is still passed on, its bad bytes as surrogate escapes, so that the CSV parser
    keeps its place in the file and only the record holding the line is rejected.
    """
    for number, raw in enumerate(handle, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_lines[number] = _not_utf8(exc)
            yield raw.decode("utf-8", "surrogateescape")


def _csv_row_or_error(
    row: dict[str, Any], bad_lines: dict[int, str], first: int, last: int
) -> dict[str, Any] | RowError:
    """The row, or the reason it is rejected: bad bytes on one of its lines, or extra fields."""
    reasons = [bad_lines.pop(n) for n in range(first, last + 1) if n in bad_lines]
    if reasons:
        return RowError(reasons[0])
    return RowError("more fields than the header has") if None in row else row


def _iter_csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (starting line number, row dict or RowError) for each CSV record (fields may span
    lines).

    ``strict`` quoting makes a quote left open fail at once instead of silently swallowing
    every following row into one field.
    """
    csv.field_size_limit(sys.maxsize)
    bad_lines: dict[int, str] = {}
    with open_bytes(path) as handle:
        reader = csv.DictReader(_decoded_lines(handle, bad_lines), strict=True)
        line = 1
        try:
            for row in reader:
                yield line + 1, _csv_row_or_error(row, bad_lines, line + 1, reader.line_num)
                line = reader.line_num
        except (csv.Error, *STREAM_ERRORS) as exc:
            raise FileDamage(line + 1, str(exc)) from exc


def _iter_parquet_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (row number, row dict), reading one record batch at a time."""
    number = 0
    try:
        for batch in pyarrow.parquet.ParquetFile(path).iter_batches(PARQUET_BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (pyarrow.ArrowException, OSError) as exc:
        raise FileDamage(number + 1, str(exc)) from exc


def _log_format(path: Path) -> str:
    """The reader for ``path`` by extension (``.gz`` allowed on top), or ``""``."""
    name = path.name.lower().removesuffix(".gz")
    return next((suffix for suffix in SUPPORTED_SUFFIXES if name.endswith(suffix)), "")


def check_log_paths(paths: Iterable[Path]) -> None:
    """Fail before any work when a path is missing or of an unsupported format."""
    for path in paths:
        if path.is_dir():
            raise ValueError(
                f"{path} is a directory; pass the log files in it (e.g. {path}/*.jsonl)"
            )
        if not path.is_file():
            raise ValueError(f"{path}: no such log file")
        if not _log_format(path) or (_log_format(path) == ".parquet" and path.suffix == ".gz"):
            raise ValueError(
                f"{path}: unsupported log format (expected .jsonl[.gz], .csv[.gz] or .parquet)"
            )


def _row_source(path: Path) -> Iterator[tuple[int, Any]]:
    suffix = _log_format(path)
    if suffix == ".csv":
        return _iter_csv_rows(path)
    if suffix == ".parquet":
        return _iter_parquet_rows(path)
    return _iter_jsonl_rows(path)


def first_row_columns(path: Path) -> list[str]:
    """The column names of the first parsed row of ``path`` ([] if it has none or is damaged),
    to show what a file holds when none of its rows fit the schema."""
    try:
        for _line, row in _row_source(path):
            if isinstance(row, Mapping):
                return [str(name) for name in row]
    except (FileDamage, *STREAM_ERRORS):
        pass
    return []


class _SeenRecords:
    """Recognises an exact repeat of an earlier record (every field equal), in any file read.

    Only a 128-bit digest of each distinct record is kept (about 100 bytes per record), not the
    record, so that the check costs little memory beside logs that do not fit in it.
    """

    def __init__(self) -> None:
        self._digests: set[bytes] = set()

    def check_new(self, record: LogRecord) -> None:
        """Remember ``record``; raise ``RowError`` if an earlier one had the same fields."""
        digest = hashlib.blake2b(record.to_json().encode(), digest_size=16).digest()
        if digest in self._digests:
            raise RowError("exact duplicate of an earlier row")
        self._digests.add(digest)


def _file_records(
    path: Path, rejects: RejectSink, seen: _SeenRecords, read_row: Callable[[Any], LogRecord]
) -> Iterator[LogRecord]:
    """Stream the valid, new records of one file; report its bad rows and damage.

    A file that gives no row at all (empty, blank lines only, a CSV header only) is reported
    as a whole: an empty log is more likely a failed export than an intended input.
    """
    line = 0
    try:
        for line, row in _row_source(path):
            try:
                if isinstance(row, RowError):
                    raise row
                record = read_row(row)
                seen.check_new(record)
                yield record
            except RowError as exc:
                rejects.add(Reject(str(path), line, str(exc)))
    except FileDamage as exc:
        rejects.add(Reject(str(path), exc.line, f"file unreadable from here on: {exc}", True))
    except STREAM_ERRORS as exc:
        rejects.add(Reject(str(path), line + 1, f"file unreadable from here on: {exc}", True))
    else:
        if line == 0:
            rejects.add(Reject(str(path), 0, "empty file: no rows", True))


def iter_log_records(
    paths: Iterable[Path],
    rejects: RejectSink,
    column_map: Mapping[str, str] | None = None,
    performance_scale: float = 1.0,
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
) -> Iterator[LogRecord]:
    """Stream valid records from every file; report bad rows and damaged files to ``rejects``.

    The options are those of ``record_from_row``. A record equal in every field to an earlier
    one, in the same file or another, is reported as a duplicate: mining it twice would count
    one response twice.
    """
    seen = _SeenRecords()

    def read_row(row: Any) -> LogRecord:
        return record_from_row(row, column_map, performance_scale, max_field_bytes)

    for path in paths:
        yield from _file_records(path, rejects, seen, read_row)
