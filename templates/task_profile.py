"""What a mining run learns about each task before distilling: its answer format and boilerplate.

Both come from a bounded, deterministic sample of each task's queries: the ``SAMPLE_QUERIES``
queries whose key hashes lowest, so the sample does not depend on the order of the logs and
memory does not grow with them.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from thoughtbank.templates.answer_format import AnswerFormat, task_answer_format
from thoughtbank.templates.boilerplate import Boilerplate, learn_boilerplate
from thoughtbank.templates.selection import QueryGroup, SelectionRules

SAMPLE_QUERIES = 300
#: Successful responses kept per sampled query: enough to see a task's habits, bounded time.
RESPONSES_PER_QUERY = 6


@dataclass(frozen=True, slots=True)
class TaskProfile:
    task: str
    metric: str
    answer_format: AnswerFormat
    boilerplate: Boilerplate


@dataclass(frozen=True, slots=True)
class _QuerySample:
    query: str
    ground_truth: str
    metric: str
    successes: tuple[str, ...]


def _sample_of(group: QueryGroup, rules: SelectionRules) -> _QuerySample:
    successes = tuple(r.response for r in group.records if rules.succeeded(r))
    return _QuerySample(
        query=group.query,
        ground_truth=next((r.ground_truth for r in group.records if r.ground_truth), ""),
        metric=next((r.metric for r in group.records if r.metric), ""),
        successes=successes[:RESPONSES_PER_QUERY],
    )


def _rank(group: QueryGroup) -> bytes:
    task, query = group.key
    return hashlib.blake2b(f"{task}\x00{query}".encode(), digest_size=8).digest()


def _profile(task: str, samples: list[_QuerySample]) -> TaskProfile:
    metric = next((s.metric for s in samples if s.metric), "")
    answer_format = task_answer_format(
        metric,
        [s.query for s in samples],
        [response for s in samples for response in s.successes],
        [s.ground_truth for s in samples],
    )
    boilerplate = learn_boilerplate(s.successes for s in samples if s.successes)
    return TaskProfile(task, metric, answer_format, boilerplate)


def learn_task_profiles(
    groups: Iterable[QueryGroup], rules: SelectionRules = SelectionRules()
) -> dict[str, TaskProfile]:
    """The profile of every task in ``groups``, learned from at most ``SAMPLE_QUERIES`` of its
    queries (the same ones whatever the order of ``groups``)."""
    # Per task a heap keyed by the negated rank: its root is the sampled query ranked last.
    heaps: dict[str, list[tuple[bytes, tuple[str, str], _QuerySample]]] = {}
    for group in groups:
        heap = heaps.setdefault(group.task, [])
        key = (bytes(255 - b for b in _rank(group)), group.key)
        if len(heap) < SAMPLE_QUERIES:
            heapq.heappush(heap, (*key, _sample_of(group, rules)))
        elif key > heap[0][:2]:
            heapq.heapreplace(heap, (*key, _sample_of(group, rules)))
    return {
        task: _profile(
            task, [sample for *_, sample in sorted(heap, key=lambda e: e[:2], reverse=True)]
        )
        for task, heap in sorted(heaps.items())
    }
