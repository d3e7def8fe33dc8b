"""Micro-batching of concurrent requests for an asyncio server.

Embedding a few queries together costs little more than embedding one, so requests arriving
together are processed as one batch in a worker thread: the event loop never blocks on the model.

Taking only what is queued when a batch ends would split concurrent callers into alternating
halves, since the callers just answered are still on their way back. So the batcher counts the
callers it answered that have not sent again, and a batch waits for them, at most
``max_wait_s``. A lone client is the one caller expected and never waits.

With ``workers`` > 1, batches run in several threads at once, so the cores do not idle while one
batch's callers travel. Only the first thread computes on several cores, and only when its batch
runs alone: GNU OpenMP (torch's runtime) stops spinning between parallel regions once it manages
more threads than there are cores, which slows every forward pass. The thread count a batch may
use is handed to ``process``.
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

    ``process(items, cores)`` runs in ``workers`` dedicated threads, one batch per thread at a
    time, and may use ``cores`` threads of its own (see the module docstring). Items whose
    caller gave up (cancelled: deadline passed, client gone) before their batch started are
    skipped.
    """

    def __init__(
        self,
        process: Callable[[Sequence[Item], int], Sequence[Outcome]],
        max_batch_size: int = 32,
        max_wait_s: float = 0.002,
        on_batch: Callable[[int], None] | None = None,
        workers: int = 1,
        cores: int = 1,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._process = process
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._cores = max(1, cores)
        self._queue: asyncio.Queue[_Pending[Item, Outcome]] = asyncio.Queue()
        self._threads = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{i}")
            for i in range(workers)
        ]
        self._idle = set(range(workers))  # positions in self._threads; 0 may use every core
        self._thread_freed: asyncio.Event | None = None
        self._collector: asyncio.Task[None] | None = None
        self._computing: set[asyncio.Task[None]] = set()
        self._returning = 0  # callers answered that have not submitted again (an estimate)

    def start(self) -> None:
        self._thread_freed = asyncio.Event()
        self._collector = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def close(self) -> None:
        """Stop taking batches, let running ones complete, and release the threads."""
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        await asyncio.gather(*self._computing, return_exceptions=True)
        for thread in self._threads:
            thread.shutdown(wait=True)

    async def submit(self, item: Item) -> Outcome:
        """The outcome for ``item``, computed in the next batch."""
        if self._collector is None or self._collector.done():
            raise RuntimeError("the micro-batcher is not running")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._returning = max(0, self._returning - 1)
        self._queue.put_nowait(_Pending(item, future))
        return await future

    async def _run(self) -> None:
        """Wait for a free thread, collect a batch for it, start it, repeat."""
        assert self._thread_freed is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._idle:
                self._thread_freed.clear()
                await self._thread_freed.wait()
            batch = await self._collect()
            if not batch:
                continue
            position = min(self._idle)  # the first thread whenever it is idle
            self._idle.remove(position)
            computing = loop.create_task(self._compute(position, self._cores_for(position), batch))
            self._computing.add(computing)
            computing.add_done_callback(self._computing.discard)

    def _cores_for(self, position: int) -> int:
        """Cores for a batch taking thread ``position``: one, except on the first thread, which
        gets what the other busy threads leave; under load (answered callers on their way
        back) it gets one too, as its idle OpenMP threads spin for milliseconds after a batch
        on several cores and would take a core from the batch that starts next."""
        if position != 0 or self._returning > 0:
            return 1
        others_busy = len(self._threads) - len(self._idle) - 1
        return max(1, self._cores - others_busy)

    async def _compute(
        self, position: int, cores: int, batch: list[_Pending[Item, Outcome]]
    ) -> None:
        """Process ``batch`` on thread ``position``, answer its callers, and free the thread."""
        assert self._thread_freed is not None
        if self._on_batch is not None:
            self._on_batch(len(batch))
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(
                self._threads[position], self._process, [p.item for p in batch], cores
            )
        except Exception as exc:  # handed to every caller of the batch, not lost
            self._settle(batch, error=exc)
        else:
            self._settle(batch, outcomes=outcomes)
        finally:
            self._returning += len(batch)
            self._idle.add(position)
            self._thread_freed.set()

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
        """The next batch: what is queued, plus the expected callers arriving within the wait."""
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait_s
        while len(batch) < self._max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if self._returning == 0 or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        if loop.time() >= deadline:
            self._returning = 0  # the rest did not come back in time: stop waiting for them
        return [p for p in batch if not p.future.done()]
