"""Micro-batching of concurrent requests for an asyncio server.

Embedding a few queries together costs little more than embedding one, so requests arriving
together are processed as one batch in a worker thread: the event loop never blocks on the model.

Taking only what is queued when a batch ends would split concurrent callers into alternating
halves, since the callers just answered are still on their way back. So the batcher counts the
callers it answered that have not sent again, and a batch waits for them, at most
``max_wait_s``. A lone client is the one caller expected and never waits.

Batches are filled fairly: each caller's items wait in a lane of their own, and a batch takes
one item per lane in turn. A RetrieveBatch of 1,000 queries is thus cut into slices that share
every micro-batch with the other callers. A caller's first item goes before the lanes already
in turn, so a single Retrieve waits for the batches computing and no longer, however many
callers' batches are queued.

With ``workers`` > 1, batches run in several threads at once, so the cores do not idle while one
batch's callers travel. Only the first thread computes on several cores, and only when its batch
runs alone: GNU OpenMP (torch's runtime) stops spinning between parallel regions once it manages
more threads than there are cores, which slows every forward pass. The thread count a batch may
use is handed to ``process``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
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
    last: bool  # the last item of its caller: computing it answers the caller


_Lane = deque[_Pending[Item, Outcome]]  # one caller's items not yet batched, in order


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
        self._fresh: deque[_Lane[Item, Outcome]] = deque()  # callers not served yet, FIFO
        self._lanes: deque[_Lane[Item, Outcome]] = deque()  # callers served before, in turn
        self._arrived: asyncio.Event | None = None
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
        self._arrived = asyncio.Event()
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
        (outcome,) = await self.submit_all([item])
        return outcome

    async def submit_all(self, items: Sequence[Item]) -> list[Outcome]:
        """The outcomes for one caller's ``items``, in order, batched fairly with others'."""
        if self._collector is None or self._collector.done():
            raise RuntimeError("the micro-batcher is not running")
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        lane: _Lane[Item, Outcome] = deque(
            _Pending(item, loop.create_future(), last=i == len(items) - 1)
            for i, item in enumerate(items)
        )
        if not lane:
            return []
        futures = [pending.future for pending in lane]
        self._returning = max(0, self._returning - 1)
        self._fresh.append(lane)
        self._arrived.set()
        return list(await asyncio.gather(*futures))

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
            self._returning += sum(pending.last for pending in batch)
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
        """The next batch: what is waiting, plus the expected callers arriving within the wait."""
        while not self._waiting():
            await self._next_arrival()
        batch = self._take(self._max_batch_size)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait_s
        while len(batch) < self._max_batch_size:
            if self._waiting():
                batch += self._take(self._max_batch_size - len(batch))
                continue
            remaining = deadline - loop.time()
            if self._returning == 0 or remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._next_arrival(), remaining)
            except asyncio.TimeoutError:
                break
        if loop.time() >= deadline:
            self._returning = 0  # the rest did not come back in time: stop waiting for them
        return [p for p in batch if not p.future.done()]  # some gave up during the wait

    async def _next_arrival(self) -> None:
        assert self._arrived is not None
        self._arrived.clear()
        await self._arrived.wait()

    def _waiting(self) -> bool:
        return bool(self._fresh or self._lanes)

    def _take(self, room: int) -> list[_Pending[Item, Outcome]]:
        """Up to ``room`` items, one per lane in turn; items whose caller gave up are dropped."""
        taken: list[_Pending[Item, Outcome]] = []
        while self._waiting() and len(taken) < room:
            lane = (self._fresh or self._lanes).popleft()
            pending = lane.popleft()
            if lane:
                self._lanes.append(lane)
            if not pending.future.done():
                taken.append(pending)
        return taken
