"""``thoughtbank serve`` in a child process, for the demo, tests and benchmarks.

The server prints one line when it listens and one when it serves; this harness waits for them.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from thoughtbank.cli_common import LOOPBACK

LISTENING_PREFIX = "thoughtbank: listening on "
READY_PREFIX = "thoughtbank: serving on "
METRICS_MARK = " metrics "


class ServerProcess:
    """``thoughtbank serve`` in a child process, for the demo, tests and benchmarks.

    Starts on a free port (``--port 0``) and waits for the line saying it serves (or, with
    ``wait_for_index=False``, only that it listens); stops with SIGTERM. ``metrics_port`` is
    set when ``extra_args`` ask for ``--metrics-port``. ``port`` other than 0 binds that
    one, as a replica restarted where its clients expect it.
    """

    def __init__(
        self,
        index_dir: Path | None,
        host: str = LOOPBACK,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 120.0,
        env: dict[str, str] | None = None,
        wait_for_index: bool = True,
        index_root: Path | None = None,
        port: int = 0,
    ) -> None:
        """``index_dir`` is served as ``--index``, or ``index_root`` as ``--index-root``."""
        source = (
            ["--index", str(index_dir)] if index_root is None else ["--index-root", str(index_root)]
        )
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "thoughtbank.cli",
                "serve",
                *source,
                "--host",
                host,
                "--port",
                str(port),
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            env=env,
        )
        self.host = host
        self.metrics_port: int | None = None
        self.port = self._wait_for(
            READY_PREFIX if wait_for_index else LISTENING_PREFIX, startup_timeout
        )

    def _wait_for(self, prefix: str, timeout: float) -> int:
        found: list[int] = []

        def read() -> None:
            assert self._process.stdout is not None
            for line in self._process.stdout:
                if line.startswith(LISTENING_PREFIX) and METRICS_MARK in line:
                    self.metrics_port = int(line.rsplit(METRICS_MARK, 1)[1])
                if line.startswith(prefix):
                    found.append(int(line[len(prefix) :].split()[0].rsplit(":", 1)[1]))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise RuntimeError(
                f"server did not start within {timeout:.0f}s (exit code {self._process.poll()})"
            )
        return found[0]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self._process.pid

    def send_signal(self, sig: int) -> None:
        self._process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self._process.wait(timeout)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for the drain, SIGKILL if it does not exit; return the exit code."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()
        return self._process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
