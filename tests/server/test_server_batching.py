"""MicroBatcher scheduling: full closed-loop batches, bounded waits, parallel workers."""

from __future__ import annotations

import asyncio
import threading
import time

from thoughtbank.retriever.serving.micro_batcher import MicroBatcher


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


def _slow_echo(items, cores):
    time.sleep(0.02)
    return list(items)


def _echo(items, cores):
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
        batcher = MicroBatcher(_echo, max_batch_size=8, max_wait_s=0.3)
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
        batcher = MicroBatcher(_echo, max_batch_size=8, max_wait_s=0.5)
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

    def meet_the_other_batch(items, cores):
        both_running.wait()  # raises BrokenBarrierError unless two batches run at once
        return list(items)

    async def scenario() -> list[int]:
        batcher = MicroBatcher(
            meet_the_other_batch, max_batch_size=2, max_wait_s=0.0, on_batch=sizes.append, workers=2
        )
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(i) for i in range(4)))
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) == [0, 1, 2, 3]
    assert sizes == [2, 2]


def test_only_the_first_thread_gets_several_cores_and_takes_every_lone_batch() -> None:
    """A lone batch runs on thread 0 with every core; while another batch runs, each gets one
    core; threads other than the first never get more than one (module docstring: OpenMP)."""
    first_started = threading.Event()
    release_first = threading.Event()
    allotted: list[tuple[str, int, object]] = []

    def record(items, cores):
        allotted.append((threading.current_thread().name, cores, items[0]))
        if items[0] == "long":
            first_started.set()
            release_first.wait(5)
        return list(items)

    async def scenario() -> None:
        batcher = MicroBatcher(record, max_batch_size=1, max_wait_s=0.0, workers=3, cores=4)
        batcher.start()
        try:
            await batcher.submit("alone")
            long = asyncio.ensure_future(batcher.submit("long"))
            await asyncio.to_thread(first_started.wait, 5)
            await asyncio.gather(
                batcher.submit("beside the long one"), batcher.submit("also beside it")
            )
            release_first.set()
            await long
            await batcher.submit("alone again")
        finally:
            await batcher.close()

    asyncio.run(scenario())
    threads = {item: (name, cores) for name, cores, item in allotted}
    first = threads["alone"][0]
    assert threads["alone"] == (first, 4)
    assert threads["long"] == (first, 4)
    assert {threads["beside the long one"][1], threads["also beside it"][1]} == {1}
    assert first not in {threads["beside the long one"][0], threads["also beside it"][0]}
    assert threads["alone again"] == (first, 4)


def test_the_first_thread_gets_one_core_while_answered_callers_are_on_their_way_back() -> None:
    """Under load its idle OpenMP threads would spin on the cores the next batch needs."""
    allotted: list[tuple[tuple[object, ...], int]] = []

    def record(items, cores):
        allotted.append((tuple(items), cores))
        return list(items)

    async def scenario() -> None:
        batcher = MicroBatcher(record, max_batch_size=2, max_wait_s=1.0, workers=2, cores=4)
        batcher.start()
        try:
            await asyncio.gather(*(batcher.submit(i) for i in range(4)))  # 4 callers answered
            await asyncio.gather(batcher.submit("x"), batcher.submit("y"))  # 2 are back
        finally:
            await batcher.close()

    asyncio.run(scenario())
    cores = dict(allotted)
    assert cores[(0, 1)] == 4  # alone, nobody expected back
    assert cores[(2, 3)] == 1  # beside the first batch
    assert cores[("x", "y")] == 1  # two more callers are on their way back
