"""Micro-batching of concurrent requests for an asyncio server.

Embedding one query costs nearly as much as embedding eight (measurements.md: 3x the throughput
with batching), so requests arriving together are processed as one batch in a single worker
thread: the event loop never blocks on the model, and the model gets both cores for each batch
instead of several small calls competing for them.

Batches form naturally while the previous batch runs. When that batch held more than one
request (so clients are concurrent), the batcher also waits up to ``max_wait_s`` for more; a
lone client never waits, so its latency stays that of one in-process call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass
class _Pending(Generic[Item, Outcome]):
    item: Item
    future: asyncio.Future[Outcome]


class MicroBatcher(Generic[Item, Outcome]):
    """Collects ``submit``ted items into batches for ``process`` (one outcome per item, in order).

    ``process`` runs in one dedicated thread, one batch at a time. Items whose caller gave up
    (cancelled: deadline passed, client gone) before their batch started are skipped.
    """

    def __init__(
        self,
        process: Callable[[Sequence[Item]], Sequence[Outcome]],
        max_batch_size: int = 32,
        max_wait_s: float = 0.002,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self._process = process
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending[Item, Outcome]] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch")
        self._worker: asyncio.Task[None] | None = None
        self._last_batch_size = 0

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def close(self) -> None:
        """Stop taking batches (the running one completes) and release the thread."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, item: Item) -> Outcome:
        """The outcome for ``item``, computed in the next batch."""
        if self._worker is None or self._worker.done():
            raise RuntimeError("the micro-batcher is not running")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(item, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            self._last_batch_size = len(batch)
            if self._on_batch is not None:
                self._on_batch(len(batch))
            try:
                outcomes = await loop.run_in_executor(
                    self._executor, self._process, [p.item for p in batch]
                )
            except Exception as exc:  # handed to every caller of the batch, not lost
                self._settle(batch, error=exc)
            else:
                self._settle(batch, outcomes=outcomes)

    @staticmethod
    def _settle(
        batch: list[_Pending[Item, Outcome]],
        outcomes: Sequence[Outcome] = (),
        error: Exception | None = None,
    ) -> None:
        """Resolve each still-waiting caller with its outcome, or all of them with ``error``."""
        for position, pending in enumerate(batch):
            if pending.future.done():
                continue
            if error is not None:
                pending.future.set_exception(error)
            else:
                pending.future.set_result(outcomes[position])

    async def _collect(self) -> list[_Pending[Item, Outcome]]:
        """The next batch: what is queued now, plus (under concurrency) what arrives shortly."""
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._max_wait_s if self._last_batch_size > 1 else 0.0)
        while len(batch) < self._max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return [p for p in batch if not p.future.done()]
