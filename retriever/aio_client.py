"""asyncio client SDK (grpc.aio) with the same methods, settings and errors as the sync client.

Both clients build the same ``Call``s (``thoughtbank.retriever.base_client``); only carrying them
differs. A grpc.aio channel belongs to the event loop of its first call: use one client within
one loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

import grpc

from thoughtbank.protos import pb2_grpc
from thoughtbank.retriever.base_client import (
    BaseClient,
    Call,
    ConnectionSettings,
    list_namespaces_call,
)
from thoughtbank.retriever.client import LocalTransport, Transport
from thoughtbank.retriever.errors import error_from_rpc
from thoughtbank.retriever.types import (
    DEFAULT_K,
    AugmentedPrompt,
    IndexInfo,
    NamespaceInfo,
    RetrievalQuery,
    RetrievalResult,
)
from thoughtbank.schema import OutcomeRecord, ThoughtTemplate

T = TypeVar("T")


class AsyncTransport(Protocol):
    """What carries an ``AsyncThoughtbankClient``'s calls."""

    address: str

    async def call(self, call: Call[T], timeout: float | None) -> T: ...

    async def close(self) -> None: ...


class AioGrpcTransport:
    """Calls a server over one grpc.aio channel, opened by the first call.

    Opening it there binds it to the loop that runs the calls, so a client may be built before
    ``asyncio.run``.
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.address = settings.address
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb2_grpc.ThoughtTemplateServiceStub | None = None
        self._closed = False

    def _open_stub(self) -> pb2_grpc.ThoughtTemplateServiceStub:
        if self._closed:
            raise ValueError("cannot call on a closed channel")
        if self._stub is None:
            self._channel = self.settings.open_channel(grpc.aio)
            self._stub = pb2_grpc.ThoughtTemplateServiceStub(self._channel)
        return self._stub

    async def call(self, call: Call[T], timeout: float | None) -> T:
        method = getattr(self._open_stub(), call.method)
        try:
            reply = await method(
                call.request,
                timeout=self.settings.deadline(timeout),
                metadata=self.settings.metadata(),
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc
        return call.parse(reply)

    async def close(self) -> None:
        self._closed = True
        if self._channel is not None:
            await self._channel.close()


class ThreadedTransport:
    """Carries calls over a sync ``Transport`` in worker threads, so in-process retrieval never
    blocks the loop."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.address = transport.address

    async def call(self, call: Call[T], timeout: float | None) -> T:
        return await asyncio.to_thread(self.transport.call, call, timeout)

    async def close(self) -> None:
        self.transport.close()


class AsyncThoughtbankClient(BaseClient[AsyncTransport]):
    """asyncio client; ``async with`` it or ``await close()``. Settings as ``ThoughtbankClient``.

    >>> async with AsyncThoughtbankClient("127.0.0.1:50051") as client:  # doctest: +SKIP
    ...     result = await client.retrieve("What is 3 + 4?")
    """

    def _connect(self, settings: ConnectionSettings) -> AsyncTransport:
        return AioGrpcTransport(settings)

    @classmethod
    def local(cls, index_dir: Path | str, *, namespace: str = "") -> AsyncThoughtbankClient:
        """The same API over an index loaded in this process (namespace ``default``); calls
        run in worker threads."""
        return cls(ThreadedTransport(LocalTransport(Path(index_dir))), namespace=namespace)

    async def retrieve(
        self,
        query: str | RetrievalQuery,
        k: int = DEFAULT_K,
        task: str = "",
        *,
        min_score: float | None = None,
        diversity: float = 0.0,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> RetrievalResult:
        """Top-``k`` templates for ``query`` (a text, or a ``RetrievalQuery`` for every option)."""
        call = self._retrieve(query, k, task, min_score, diversity, namespace)
        return await self._transport.call(call, timeout)

    async def retrieve_batch(
        self,
        queries: Sequence[str | RetrievalQuery],
        k: int = DEFAULT_K,
        task: str = "",
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> list[RetrievalResult]:
        """One result per query, in order, from a single call (embedded as one batch)."""
        return await self._transport.call(
            self._retrieve_batch(queries, k, task, namespace), timeout
        )

    async def augment(
        self,
        query: str | RetrievalQuery,
        k: int = DEFAULT_K,
        task: str = "",
        *,
        min_score: float | None = None,
        diversity: float = 0.0,
        max_template_tokens: int | None = None,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> AugmentedPrompt:
        """The FusionFactory-style prompt for ``query`` with the templates it was built from."""
        call = self._augment(query, k, task, min_score, diversity, max_template_tokens, namespace)
        return await self._transport.call(call, timeout)

    async def get_template(
        self, template_id: str, *, namespace: str | None = None, timeout: float | None = None
    ) -> ThoughtTemplate:
        return await self._transport.call(self._get_template(template_id, namespace), timeout)

    async def index_info(
        self, *, namespace: str | None = None, timeout: float | None = None
    ) -> IndexInfo:
        return await self._transport.call(self._index_info(namespace), timeout)

    async def record_outcome(
        self,
        outcome: OutcomeRecord,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Report how an answer scored with ``outcome.template_ids`` in its prompt, stored
        durably; False when this ``outcome_id`` was recorded before (a retry is safe)."""
        return await self._transport.call(self._record_outcome(outcome, namespace), timeout)

    async def record_outcomes(
        self,
        outcomes: Sequence[OutcomeRecord],
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> list[bool]:
        """``record_outcome`` for many outcomes in one call, e.g. replayed evaluation results."""
        return await self._transport.call(self._record_outcomes(outcomes, namespace), timeout)

    async def list_namespaces(self, *, timeout: float | None = None) -> list[NamespaceInfo]:
        """The namespaces the server holds that this client's token may read, by name."""
        return await self._transport.call(list_namespaces_call(), timeout)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncThoughtbankClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
