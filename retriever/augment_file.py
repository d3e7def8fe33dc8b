"""Batch augmentation: a JSONL file of queries in, the same rows with augmented prompts out.

Rows stream through: at most ``concurrency`` AugmentPrompt calls are in flight, results are
written in input order as soon as the oldest one is back, and memory stays bounded whatever the
file size. A bad row (not JSON, no query text, a query the server rejects) is reported with its
line number and skipped; any other error stops the job with everything before it written.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

from thoughtbank.files import open_bytes
from thoughtbank.retriever.aio_client import AsyncThoughtbankClient
from thoughtbank.retriever.errors import InvalidRequestError
from thoughtbank.retriever.types import DEFAULT_K, AugmentedPrompt, RetrievalQuery

DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class BatchSettings:
    """Which columns to read and write, and how to retrieve."""

    query_column: str = "query"
    task_column: str | None = "task_name"
    prompt_column: str = "augmented_prompt"
    k: int = DEFAULT_K
    concurrency: int = DEFAULT_CONCURRENCY
    limit: int | None = None


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str


@dataclass(frozen=True)
class BatchSummary:
    read: int
    written: int
    skipped: int


@dataclass(frozen=True)
class QueryRow:
    line: int
    row: dict[str, Any]
    query: RetrievalQuery


def parse_row(line: int, raw: bytes, settings: BatchSettings) -> QueryRow | BadLine:
    """The query of one JSONL line, or why it cannot be used."""
    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return BadLine(line, f"not UTF-8 text: {exc.reason} at byte {exc.start}")
    except json.JSONDecodeError as exc:
        return BadLine(line, f"not JSON: {exc.msg}")
    if not isinstance(row, dict):
        return BadLine(line, "not a JSON object")
    query = row.get(settings.query_column)
    if not isinstance(query, str) or not query.strip():
        return BadLine(line, f"no text in column {settings.query_column!r}")
    task = row.get(settings.task_column, "") if settings.task_column else ""
    if not isinstance(task, str):
        return BadLine(line, f"column {settings.task_column!r} is not a string")
    return QueryRow(line, row, RetrievalQuery(query, k=settings.k, task=task))


def read_rows(path: Path, settings: BatchSettings) -> Iterator[QueryRow | BadLine]:
    """Parsed rows of ``path`` (blank lines ignored), up to ``settings.limit`` of them.

    Lines are decoded one by one, so bad bytes spoil only their own line.
    """
    with open_bytes(path) as source:
        numbered = ((n, raw) for n, raw in enumerate(source, 1) if raw.strip())
        for line, raw in islice(numbered, settings.limit):
            yield parse_row(line, raw, settings)


def output_row(row: QueryRow, augmented: AugmentedPrompt, settings: BatchSettings) -> str:
    """The input row with the prompt, the ids and scores of its templates and the index version."""
    out = {
        **row.row,
        settings.prompt_column: augmented.prompt,
        "template_ids": [hit.template.id for hit in augmented.hits],
        "template_scores": [round(hit.score, 6) for hit in augmented.hits],
        "index_version": augmented.index_version,
    }
    return json.dumps(out, ensure_ascii=False) + "\n"


async def _finish(
    pending: tuple[QueryRow, asyncio.Task[AugmentedPrompt]], settings: BatchSettings
) -> str | BadLine:
    row, call = pending
    try:
        return output_row(row, await call, settings)
    except InvalidRequestError as exc:
        return BadLine(row.line, f"rejected by the server: {exc.message}")


async def augment_stream(
    client: AsyncThoughtbankClient,
    rows: Iterable[QueryRow | BadLine],
    out: IO[str],
    settings: BatchSettings,
    on_bad_line: Callable[[BadLine], None],
    on_row_done: Callable[[], object] = lambda: None,
) -> BatchSummary:
    """Augment every row into ``out``, in order, with bounded concurrency."""
    in_flight: deque[tuple[QueryRow, asyncio.Task[AugmentedPrompt]]] = deque()
    read = written = skipped = 0

    async def write_oldest() -> None:
        nonlocal written, skipped
        result = await _finish(in_flight.popleft(), settings)
        if isinstance(result, BadLine):
            skipped += 1
            on_bad_line(result)
        else:
            written += 1
            out.write(result)
        on_row_done()

    try:
        for parsed in rows:
            read += 1
            if isinstance(parsed, BadLine):
                skipped += 1
                on_bad_line(parsed)
                on_row_done()
                continue
            in_flight.append((parsed, asyncio.create_task(client.augment(parsed.query))))
            if len(in_flight) >= settings.concurrency:
                await write_oldest()
        while in_flight:
            await write_oldest()
    finally:
        for _, call in in_flight:
            call.cancel()
    return BatchSummary(read=read, written=written, skipped=skipped)
