"""Black-box helpers of the fault suite: the CLI as a subprocess, health checks, RSS, templates.

The suite reaches the system only through the CLI, gRPC and the public Python API, so it stays
valid while the stages change their internals. Load comes from ``benchmarks.common`` so that the
fault suite and the benchmarks drive the server the same way.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from thoughtbank.templates import ThoughtTemplate, read_templates

from conftest import REPO_ROOT

if str(REPO_ROOT) not in sys.path:  # benchmarks/ is a folder of the repo, not of the package
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import ClosedLoopLoad, LoadReport

__all__ = [
    "ClosedLoopLoad",
    "LoadReport",
    "health_status",
    "metric_value",
    "metrics_text",
    "read_template_identity",
    "run_cli",
    "template_identity",
    "wait_for",
]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def run_cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``thoughtbank ARGS`` in a fresh interpreter, output captured, never raising on exit code."""
    return subprocess.run(
        [sys.executable, "-m", "thoughtbank.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def health_status(address: str, service: str = "") -> int:
    """The health service's answer for ``service`` (the whole server by default)."""
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10
        )
    return reply.status


def metrics_text(host: str, port: int) -> str:
    """The server's /metrics page."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def metric_value(host: str, port: int, series: str) -> float:
    """The value of one Prometheus ``series`` (name with labels) on /metrics; 0 if absent."""
    text = metrics_text(host, port)
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def template_identity(templates: Iterable[ThoughtTemplate]) -> list[str]:
    """Templates as sorted canonical JSON without ``created_at`` (the one run-dependent field)."""
    return sorted(json.dumps({**t.to_dict(), "created_at": ""}, sort_keys=True) for t in templates)


def read_template_identity(path: Path) -> list[str]:
    return template_identity(read_templates(path))
