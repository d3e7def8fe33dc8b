"""MicroBatcher scheduling: full closed-loop batches, bounded waits, parallel workers."""

from __future__ import annotations

import asyncio
import threading
import time

from thoughtbank.retriever.batching import CoreShare, MicroBatcher


def _closed_loop(batcher: MicroBatcher, clients: int, rounds: int) -> None:
    """``clients`` callers, each submitting again as soon as it is answered."""

    async def client(name: int) -> None:
        for round_ in range(rounds):
            assert await batcher.submit((name, round_)) == (name, round_)

    async def scenario() -> None:
        batcher.start()
        try:
            await asyncio.gather(*(client(i) for i in range(clients)))
        finally:
            await batcher.close()

    asyncio.run(scenario())


def _slow_echo(items):
    time.sleep(0.02)
    return list(items)


def test_closed_loop_callers_are_not_split_into_half_batches() -> None:
    sizes: list[int] = []
    batcher = MicroBatcher(_slow_echo, max_batch_size=8, max_wait_s=0.5, on_batch=sizes.append)
    _closed_loop(batcher, clients=8, rounds=6)
    assert sum(sizes) == 48
    # The callers of each batch come back together: after the first round, every batch is full.
    assert sizes[-5:] == [8] * 5, sizes


def test_callers_that_do_not_come_back_are_waited_for_once() -> None:
    async def scenario() -> list[float]:
        batcher = MicroBatcher(list, max_batch_size=8, max_wait_s=0.3)
        batcher.start()
        try:
            await asyncio.gather(*(batcher.submit(i) for i in range(4)))  # 4 callers answered
            durations = []
            for i in range(3):  # only one of them comes back
                started = time.perf_counter()
                await batcher.submit(i)
                durations.append(time.perf_counter() - started)
            return durations
        finally:
            await batcher.close()

    first, second, third = asyncio.run(scenario())
    assert first >= 0.25  # waited, up to max_wait, for the 3 others it had answered
    assert second < 0.15 and third < 0.15  # then stopped expecting them


def test_a_lone_caller_never_waits() -> None:
    async def scenario() -> float:
        batcher = MicroBatcher(list, max_batch_size=8, max_wait_s=0.5)
        batcher.start()
        try:
            started = time.perf_counter()
            for i in range(5):
                await batcher.submit(i)
            return time.perf_counter() - started
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) < 0.25  # five round trips, none waiting 0.5 s


def test_workers_compute_batches_at_the_same_time() -> None:
    both_running = threading.Barrier(2, timeout=5)
    sizes: list[int] = []

    def meet_the_other_batch(items):
        both_running.wait()  # raises BrokenBarrierError unless two batches run at once
        return list(items)

    async def scenario() -> list[int]:
        batcher = MicroBatcher(meet_the_other_batch, max_batch_size=2, max_wait_s=0.0,
                               on_batch=sizes.append, workers=2)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(i) for i in range(4)))
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) == [0, 1, 2, 3]
    assert sizes == [2, 2]


def test_core_share_gives_a_lone_batch_every_core_and_concurrent_batches_one_each() -> None:
    share = CoreShare(cores=2)
    with share.claim() as first:
        assert first == 2
        with share.claim() as second, share.claim() as third:
            assert (second, third) == (1, 1)
    with share.claim() as again:
        assert again == 2
