"""Joining a Ray cluster, or starting one on this machine, for the ``--engine ray`` commands.

Ray is the ``ray`` extra; importing this module without it raises a one-line install hint.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any

RAY_INSTALL = "pip install 'thoughtbank[ray]' (or '.[ray]' in a checkout)"
#: Object store of a Ray instance started here: the job's blocks spill to disk beyond it.
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20
#: A joined cluster whose head refuses connections this long is gone (Ray would wait a minute
#: and then end this process itself, with a message that names no way out).
CLUSTER_LOST_AFTER_S = 5.0
CLUSTER_CHECK_INTERVAL_S = 1.0
CLUSTER_LOST_EXIT_CODE = 1

try:
    import ray
    import ray.data
except ImportError as exc:  # the extra is optional
    raise RuntimeError(f"--engine ray needs Ray: {RAY_INSTALL}") from exc


__all__ = ["ClusterLostError", "cluster_cpus", "ray", "ray_cluster"]


class ClusterLostError(RuntimeError):
    """The Ray cluster failed or went away while a job ran on it."""


@contextmanager
def ray_cluster(address: str | None, if_lost: str) -> Iterator[str]:
    """Ray, initialised for this block: the cluster at ``address`` (``ray start --head``
    elsewhere), else a local instance sized to this machine, stopped afterwards. Inside a
    program that already initialised Ray, that session is used and left running. Yields a
    description of the cluster for messages.

    Should a joined cluster's head stop answering, the process ends with exit code 1 and a
    message naming the cluster and ``if_lost`` (what to do next), as Ray would end it later."""
    if ray.is_initialized():
        yield _describe(address)
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        # "local": a new instance even where this machine already runs a cluster.
        ray.init(address=address or "local", **_start_options(address))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterLostError(f"cannot reach the Ray cluster at {address}: {exc}") from exc
    _quiet_ray_data()
    done = threading.Event()
    head = _head_endpoint(address)
    if head is not None:
        watch = (head, _describe(address), if_lost, done)
        threading.Thread(target=_exit_when_lost, args=watch, daemon=True).start()
    # Ray prints its error events (a task retried) on stdout, which is for our JSON.
    with redirect_stdout(sys.stderr):
        try:
            yield _describe(address)
        finally:
            done.set()
            ray.shutdown()


def _head_endpoint(address: str | None) -> tuple[str, int] | None:
    """(host, port) of a ``HOST:PORT`` address; None for a local instance or another form."""
    host, _, port = (address or "").rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def _exit_when_lost(
    head: tuple[str, int], cluster: str, if_lost: str, done: threading.Event
) -> None:
    refused_since: float | None = None
    while not done.wait(CLUSTER_CHECK_INTERVAL_S):
        try:
            socket.create_connection(head, timeout=CLUSTER_CHECK_INTERVAL_S).close()
            refused_since = None
        except OSError:
            refused_since = refused_since or time.monotonic()
            if time.monotonic() - refused_since >= CLUSTER_LOST_AFTER_S and not done.is_set():
                sys.stderr.write(f"thoughtbank: error: {cluster} went away mid-run; {if_lost}\n")
                sys.stderr.flush()
                os._exit(CLUSTER_LOST_EXIT_CODE)


def _start_options(address: str | None) -> dict[str, Any]:
    # Workers' output stays in Ray's session logs: stdout carries the command's JSON summary.
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        options.update(include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    return options


def _quiet_ray_data() -> None:
    """The command draws its own progress bar; Ray Data's bars and plan logs would interleave."""
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def _describe(address: str | None) -> str:
    return f"the Ray cluster at {address}" if address else "the local Ray instance"


def cluster_cpus() -> int:
    """CPUs the cluster has, at least one."""
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return max(1, int(resources.get("CPU", 1)))
