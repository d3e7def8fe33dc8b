"""The browser's HTTP server: uvicorn on a socket bound here, so that the port (``0``: a free
one) is known and taking connections before uvicorn runs, in the foreground (``browse``) or in
a thread (``serve``)."""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn

from thoughtbank.retriever.serving.browser.app import Shelf, create_app

log = logging.getLogger("thoughtbank.browser")
# How long stopping waits for the server thread to finish its open requests.
STOP_TIMEOUT_S = 10.0


class BrowserServer:
    """The browser over ``shelf`` on ``host:port``, bound at construction."""

    def __init__(self, shelf: Shelf, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise OSError(f"cannot bind the browser to {host}:{port}: {exc.strerror}") from exc
        # Listening from here on: a caller that connects before uvicorn runs waits in the
        # backlog instead of being refused.
        self._socket.listen()
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(create_app(shelf), log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM (uvicorn's own handlers, in the main thread)."""
        self._server.run(sockets=[self._socket])

    def start(self) -> BrowserServer:
        """Serve in a thread of its own until ``stop``."""
        self._thread = threading.Thread(target=self.run, name="browser", daemon=True)
        self._thread.start()
        log.info("browser listening", extra={"url": self.url})
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        self._socket.close()

    def __enter__(self) -> BrowserServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
