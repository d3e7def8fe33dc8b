"""The Ray engine: a job's groups distilled on a Ray Data pipeline across a cluster.

The driver (``mine_templates``) reads, validates and selects as on one machine; the pending
groups go into the object store as blocks (spilling to disk beyond its size) and a pool of
actors, each holding its own distiller built from a ``DistillerSpec``, mines them with the same
``mine_or_fail`` as the local engine (retries, timeouts, leakage guard, pitfalls), a few threads
per actor since LLM calls wait on the network. Finished groups stream back to the driver, which
journals them, so ``--resume``, the rejects file, the summary and the output are those of the
local engine. A rate limit is one actor's schedule shared by every caller in the cluster.
A batch whose actor dies is run again on a restarted actor; its groups reach the journal once.
Groups and entries cross the cluster as Python objects in Ray's own serialization: only this
job's own driver and actors, inside the cluster's trust boundary, ever read them.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd
from langchain_core.rate_limiters import BaseRateLimiter

from thoughtbank.templates.distill import LLMUsage
from thoughtbank.templates.distiller_spec import DistillerSpec
from thoughtbank.templates.job import (
    DistillEngine,
    FinishedGroups,
    MiningOptions,
    mine_or_fail,
)
from thoughtbank.templates.journal import JournalEntry
from thoughtbank.templates.ray_cluster import ClusterLostError, cluster_cpus, ray, ray_cluster
from thoughtbank.templates.selection import QueryGroup
from thoughtbank.templates.task_profile import TaskProfile

RESUME_HINT = (
    "finished groups are in the journal: run again with --resume "
    "(--engine local finishes the job on this machine)"
)
#: A batch is this many rounds of an actor's threads, so a slow group delays few others.
ROUNDS_PER_BATCH = 2
#: Batches an actor runs at once, sharing its threads.
BATCHES_PER_ACTOR = 2


class _RateSchedule:
    """One cluster-wide rate: each caller is given the delay after which its call may start."""

    def __init__(self, requests_per_second: float) -> None:
        self.interval = 1.0 / requests_per_second
        self.next_slot = time.monotonic()

    def reserve(self) -> float:
        now = time.monotonic()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        return slot - now


class ClusterRateLimiter(BaseRateLimiter):
    """langchain-core's rate-limiter interface over a ``_RateSchedule`` actor."""

    def __init__(self, schedule: Any) -> None:
        self.schedule = schedule

    def acquire(self, *, blocking: bool = True) -> bool:
        time.sleep(ray.get(self.schedule.reserve.remote()))
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        await asyncio.sleep(await self.schedule.reserve.remote())
        return True


class GroupMiner:
    """A Ray Data actor: one distiller, ``threads`` groups in flight."""

    def __init__(
        self,
        spec: DistillerSpec,
        options: MiningOptions,
        profiles: dict[str, TaskProfile],
        rate_limiter: BaseRateLimiter | None,
        threads: int,
    ) -> None:
        self.distiller = spec.build(rate_limiter)
        self.options, self.profiles = options, profiles
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="distil")
        self.actor = f"{socket.gethostname()}:{os.getpid()}"

    def _mine(self, group: QueryGroup) -> JournalEntry:
        return mine_or_fail(group, self.distiller, self.options, self.profiles)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        entries = list(self.pool.map(self._mine, batch["group"]))
        usage = self.distiller.usage()
        return {
            "entry": _objects(entries),
            "actor": np.array([self.actor] * len(entries)),
            "usage": _objects([usage] * len(entries)),
        }


class RayEngine(DistillEngine):
    """Distils on the Ray cluster at ``address`` (``None``: a local instance for the job).

    ``options.workers`` concurrent distillations are spread over ``actors`` actors (default:
    the cluster's CPUs, at most ``workers``), each running ``ceil(workers / actors)`` threads.
    """

    def __init__(self, spec: DistillerSpec, address: str | None = None, actors: int | None = None):
        self.spec, self.address, self.actors = spec, address, actors
        self.name, self.version = spec.name, spec.version
        self._usage_by_actor: dict[str, LLMUsage] = {}
        self._groups_by_actor: Counter[str] = Counter()

    def distil(
        self,
        groups: Iterator[QueryGroup],
        options: MiningOptions,
        profiles: dict[str, TaskProfile],
        finished: FinishedGroups,
    ) -> None:
        self._usage_by_actor.clear()
        self._groups_by_actor.clear()
        with ray_cluster(self.address, RESUME_HINT) as cluster:
            workers = max(1, options.workers)
            actors = min(workers, self.actors or cluster_cpus())
            threads = math.ceil(workers / actors)
            blocks = _group_blocks(groups, threads * ROUNDS_PER_BATCH)
            if not blocks:
                return
            pipeline = self._pipeline(blocks, options, profiles, actors, threads)
            try:
                for batch in pipeline.iter_batches(batch_size=None, batch_format="numpy"):
                    finished(self._take(batch))
            except ray.exceptions.RayError as exc:
                raise ClusterLostError(
                    f"{cluster} failed mid-run ({type(exc).__name__}: {_first_line(exc)}); "
                    + RESUME_HINT
                ) from exc

    def _pipeline(
        self,
        blocks: list[Any],
        options: MiningOptions,
        profiles: dict[str, TaskProfile],
        actors: int,
        threads: int,
    ) -> Any:
        rps = self.spec.policy.requests_per_second if self.spec.llm else None
        schedule = ray.remote(num_cpus=0)(_RateSchedule).remote(rps) if rps else None
        limiter = ClusterRateLimiter(schedule) if schedule else None
        return ray.data.from_pandas_refs(blocks).map_batches(
            GroupMiner,
            fn_constructor_kwargs={
                "spec": self.spec,
                "options": options,
                "profiles": profiles,
                "rate_limiter": limiter,
                "threads": threads,
            },
            batch_size=threads * ROUNDS_PER_BATCH,
            batch_format="numpy",
            # Two batches at once per actor: its threads start the next batch's groups while
            # the last of the previous one finish, instead of idling until it is fetched.
            compute=ray.data.ActorPoolStrategy(
                size=actors,
                max_concurrent_calls_per_actor=BATCHES_PER_ACTOR,
                max_tasks_in_flight_per_actor=BATCHES_PER_ACTOR,  # none queued: actors share
                enable_true_multi_threading=True,
            ),
            # An LLM call waits on the network: actors share CPUs, and Ray Data keeps one free.
            num_cpus=min(1.0, cluster_cpus() / (actors + 1)) if self.spec.llm else 1.0,
        )

    def _take(self, batch: dict[str, np.ndarray]) -> list[JournalEntry]:
        """The batch's entries, and its actor's lifetime usage merged into what it reported."""
        for actor, usage in zip(batch["actor"], batch["usage"], strict=True):
            known = self._usage_by_actor.get(str(actor))
            self._usage_by_actor[str(actor)] = usage if known is None else _latest(known, usage)
        self._groups_by_actor.update(str(actor) for actor in batch["actor"])
        return list(batch["entry"])

    def usage(self) -> LLMUsage:
        usages = list(self._usage_by_actor.values())
        return LLMUsage(
            calls=sum(u.calls for u in usages),
            input_tokens=_known(sum, (u.input_tokens for u in usages)),
            output_tokens=_known(sum, (u.output_tokens for u in usages)),
        )

    def groups_per_actor(self) -> dict[str, int]:
        return dict(sorted(self._groups_by_actor.items()))


def _group_blocks(groups: Iterator[QueryGroup], size: int) -> list[Any]:
    """Object-store refs of blocks of ``size`` groups (one actor batch each, so every actor
    gets work); the driver keeps only the refs."""
    blocks = []
    while chunk := list(islice(groups, size)):
        blocks.append(ray.put(pd.DataFrame({"group": pd.Series(chunk, dtype=object)})))
    return blocks


def _objects(items: list[Any]) -> np.ndarray:
    """A 1-D object array of ``items``, never unpacked into columns as ``np.array`` would."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _latest(one: LLMUsage, other: LLMUsage) -> LLMUsage:
    """Two reports of one actor's lifetime usage as one: an actor's batches can reach the driver
    out of order, so the later report is the larger, count by count."""
    return LLMUsage(
        calls=max(one.calls, other.calls),
        input_tokens=_known(max, (one.input_tokens, other.input_tokens)),
        output_tokens=_known(max, (one.output_tokens, other.output_tokens)),
    )


def _known(combine: Callable[[list[int]], int], counts: Iterable[int | None]) -> int | None:
    """``combine`` of the counts that are known; None where none is."""
    known = [c for c in counts if c is not None]
    return combine(known) if known else None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
