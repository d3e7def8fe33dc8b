"""How many threads torch and FAISS use for calls made from the calling thread.

Both keep their OpenMP thread count per calling thread, so a server running several batches
at once can give each batch its share of the cores instead of letting every batch start a
thread per core (measured on 2 cores: two batches of 16 on one thread each embed 234 texts/s,
one batch on two threads 218/s). Nothing here imports torch: a server on the onnx backend never
loads it, and a process that has not loaded it has no torch threads to set.
"""

from __future__ import annotations

import functools
import os
import sys
import threading

import psutil

from thoughtbank.index.faiss_backend import import_faiss

_budget = threading.local()


@functools.cache
def default_threads() -> int:
    """One thread per physical core this process may run on, as torch picks by default, and no
    more than ``OMP_NUM_THREADS`` (what Ray gives each of its workers: its CPU share)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    physical = psutil.cpu_count(logical=False)
    omp = os.environ.get("OMP_NUM_THREADS", "")
    limit = int(omp) if omp.isdigit() else None
    return max(1, min(filter(None, (usable, physical, limit))))


def use_threads(count: int) -> None:
    """Make torch (when loaded) and FAISS calls from this thread use ``count`` threads."""
    torch = sys.modules.get("torch")
    if torch is not None:
        # torch sets a thread's count from the process-wide value on first use; trigger that
        # first so it cannot later override the count set here.
        torch.get_num_threads()
        torch.set_num_threads(count)
    _budget.count = count


def faiss_search_threads(queries: int) -> int:
    """Threads for one FAISS search of ``queries`` vectors from this thread.

    FAISS splits a search by query, so threads beyond the number of queries have nothing to do,
    yet each must be woken and waited for: a one-query search measured several times slower on
    a loaded 2-core machine when its idle second thread waited for a core.
    """
    return max(1, min(getattr(_budget, "count", default_threads()), queries))


def set_faiss_threads(queries: int) -> None:
    """Set this thread's FAISS thread count for a search of ``queries`` vectors."""
    import_faiss().omp_set_num_threads(faiss_search_threads(queries))
