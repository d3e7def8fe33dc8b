"""gRPC server for ``thoughtbank.v1.ThoughtTemplateService`` (grpc.aio).

Retrieval itself lives in ``thoughtbank.retriever``; this module maps RPCs onto it, turns
``ThoughtbankError``s into status codes, and wires health, reflection and graceful shutdown.
Model and FAISS work runs in worker threads so the event loop never blocks on them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from thoughtbank.protos import SERVICE_NAME, convert, pb2, pb2_grpc
from thoughtbank.retriever.engine import TemplateRetriever
from thoughtbank.retriever.errors import IndexUnavailableError, ThoughtbankError

log = logging.getLogger("thoughtbank.server")
T = TypeVar("T")


@dataclass(frozen=True)
class ServerConfig:
    index_dir: Path
    host: str = "127.0.0.1"
    port: int = 50051
    grace: float = 10.0
    max_workers: int = 8


class ThoughtTemplateServicer(pb2_grpc.ThoughtTemplateServiceServicer):
    """Plain servicer: validates through the retriever, runs it off the event loop."""

    def __init__(self) -> None:
        self.retriever: TemplateRetriever | None = None

    async def _call(self, context: grpc.aio.ServicerContext, fn: Callable[..., T], *args) -> T:
        try:
            if self.retriever is None:
                raise IndexUnavailableError("no index is loaded yet; retry shortly")
            return await asyncio.to_thread(fn, *args)
        except ThoughtbankError as exc:
            await context.abort(exc.code, exc.message)
            raise  # unreachable: abort raises

    async def Retrieve(self, request, context):
        result = await self._call(context, lambda q: self.retriever.retrieve(q),
                                  convert.query_from_pb(request))
        return convert.result_to_pb(result)

    async def RetrieveBatch(self, request, context):
        queries = [convert.query_from_pb(r) for r in request.requests]
        results = await self._call(context, lambda qs: self.retriever.retrieve_batch(qs), queries)
        return pb2.RetrieveBatchResponse(responses=[convert.result_to_pb(r) for r in results])

    async def AugmentPrompt(self, request, context):
        prompt = await self._call(context, lambda q: self.retriever.augment(q),
                                  convert.query_from_pb(request))
        return convert.augmented_to_pb(prompt)

    async def GetTemplate(self, request, context):
        template = await self._call(context, lambda i: self.retriever.get_template(i), request.id)
        return pb2.GetTemplateResponse(template=convert.template_to_pb(template),
                                       index_version=self.retriever.version)

    async def GetIndexInfo(self, request, context):
        info = await self._call(context, lambda: self.retriever.info())
        return convert.info_to_pb(info)


async def serve(config: ServerConfig, ready: Callable[[int], None] | None = None) -> None:
    """Bind, load the index, report SERVING, and run until SIGINT/SIGTERM."""
    server = grpc.aio.server()
    servicer = ThoughtTemplateServicer()
    pb2_grpc.add_ThoughtTemplateServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, reflection.SERVICE_NAME, health.SERVICE_NAME), server
    )
    port = server.add_insecure_port(f"{config.host}:{config.port}")
    if port == 0:
        raise OSError(f"cannot bind {config.host}:{config.port}")
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()

    servicer.retriever = await asyncio.to_thread(TemplateRetriever.open, config.index_dir)
    await asyncio.to_thread(servicer.retriever.embedder.encode, ["warm-up query"] * 4)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving index %s on %s:%d", servicer.retriever.version, config.host, port)
    if ready:
        ready(port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(config.grace)


def run_server(config: ServerConfig, ready: Callable[[int], None] | None = None) -> None:
    asyncio.run(serve(config, ready))


READY_PREFIX = "thoughtbank: serving on "


class ServerProcess:
    """``thoughtbank serve`` in a child process, for the demo, tests and benchmarks.

    Starts on a free port (``--port 0``), waits for the ready line, and stops with SIGTERM.
    """

    def __init__(self, index_dir: Path, host: str = "127.0.0.1", extra_args: tuple[str, ...] = (),
                 startup_timeout: float = 120.0) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "thoughtbank.cli", "serve", "--index", str(index_dir),
             "--host", host, "--port", "0", *extra_args],
            stdout=subprocess.PIPE, stderr=None, text=True,
        )
        self.host = host
        self.port = self._wait_ready(startup_timeout)

    def _wait_ready(self, timeout: float) -> int:
        found: list[int] = []

        def read() -> None:
            assert self._process.stdout is not None
            for line in self._process.stdout:
                if line.startswith(READY_PREFIX):
                    found.append(int(line.rsplit(":", 1)[1]))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise RuntimeError(f"server did not become ready within {timeout:.0f}s "
                               f"(exit code {self._process.poll()})")
        return found[0]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self._process.pid

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


def cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)
    config = ServerConfig(index_dir=args.index, host=args.host, port=args.port, grace=args.grace)
    run_server(config, ready=lambda port: print(f"{READY_PREFIX}{args.host}:{port}", flush=True))
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="serve an index over gRPC")
    serve.add_argument("--index", type=Path, required=True, help="index directory")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    serve.add_argument("--grace", type=float, default=10.0, help="seconds to drain on SIGTERM")
    serve.set_defaults(func=cmd_serve)
