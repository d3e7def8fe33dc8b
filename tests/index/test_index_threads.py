"""Thread counts of torch and FAISS are set per calling thread."""

from __future__ import annotations

import threading

import torch

from thoughtbank.index import default_threads, use_threads
from thoughtbank.index.threads import faiss_search_threads


def test_use_threads_applies_to_the_calling_thread_only() -> None:
    seen: dict[str, tuple[int, int]] = {}
    first_set = threading.Event()
    second_set = threading.Event()

    def worker(name: str, count: int, mine: threading.Event, other: threading.Event) -> None:
        use_threads(count)
        mine.set()
        other.wait(5)  # the other thread has set its own count by now
        seen[name] = (torch.get_num_threads(), faiss_search_threads(queries=64))

    threads = [
        threading.Thread(target=worker, args=("one", 1, first_set, second_set)),
        threading.Thread(target=worker, args=("two", 2, second_set, first_set)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"one": (1, 1), "two": (2, 2)}


def test_a_search_never_gets_more_threads_than_queries() -> None:
    assert faiss_search_threads(queries=1) == 1
    assert faiss_search_threads(queries=10_000) == default_threads()
