"""Joining a Ray cluster, or starting one on this machine, for the ``--engine ray`` commands.

Ray is the ``ray`` extra; importing this module without it raises a one-line install hint.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

RAY_INSTALL = "pip install 'thoughtbank[ray]' (or '.[ray]' in a checkout)"
#: Object store of a Ray instance started here: the job's blocks spill to disk beyond it.
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20

try:
    import ray
    import ray.data
except ImportError as exc:  # the extra is optional
    raise RuntimeError(f"--engine ray needs Ray: {RAY_INSTALL}") from exc


__all__ = ["ClusterLostError", "cluster_cpus", "ray", "ray_cluster"]


class ClusterLostError(RuntimeError):
    """The Ray cluster failed or went away while a job ran on it."""


@contextmanager
def ray_cluster(address: str | None) -> Iterator[str]:
    """Ray, initialised for this block: the cluster at ``address`` (``ray start --head``
    elsewhere), else a local instance sized to this machine, stopped afterwards. Inside a
    program that already initialised Ray, that session is used and left running. Yields a
    description of the cluster for messages."""
    if ray.is_initialized():
        yield _describe(address)
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, **_start_options(address))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterLostError(f"cannot reach the Ray cluster at {address}: {exc}") from exc
    _quiet_ray_data()
    try:
        yield _describe(address)
    finally:
        ray.shutdown()


def _start_options(address: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {"logging_level": logging.WARNING, "configure_logging": True}
    if address is None:
        options.update(include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    return options


def _quiet_ray_data() -> None:
    """The command draws its own progress bar; Ray Data's bars and plan logs would interleave."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def _describe(address: str | None) -> str:
    return f"the Ray cluster at {address}" if address else "the local Ray instance"


def cluster_cpus() -> int:
    """CPUs the cluster has, at least one."""
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return max(1, int(resources.get("CPU", 1)))
