"""asyncio client SDK (grpc.aio) with the same methods, settings and errors as the sync client.

Requests and responses go through the same ``UnaryCall`` builders as ``ThoughtbankClient``, so the
two clients cannot drift apart. A grpc.aio channel belongs to the event loop of its first call:
use one client within one loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import grpc

from thoughtbank.protos import pb2_grpc
from thoughtbank.retriever.client import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Backend,
    ConnectionSettings,
    LocalBackend,
    RetryPolicy,
    UnaryCall,
    augment_call,
    get_template_call,
    index_info_call,
    make_query,
    retrieve_batch_call,
    retrieve_call,
)
from thoughtbank.retriever.errors import error_from_rpc
from thoughtbank.retriever.types import (
    DEFAULT_K,
    AugmentedPrompt,
    IndexInfo,
    RetrievalQuery,
    RetrievalResult,
)
from thoughtbank.schema import ThoughtTemplate

T = TypeVar("T")


class AsyncBackend(Protocol):
    """What serves an ``AsyncThoughtbankClient``'s calls."""

    address: str

    async def retrieve(self, query: RetrievalQuery, timeout: float | None) -> RetrievalResult: ...

    async def retrieve_batch(
        self, queries: Sequence[RetrievalQuery], timeout: float | None
    ) -> list[RetrievalResult]: ...

    async def augment(
        self, query: RetrievalQuery, max_template_tokens: int | None, timeout: float | None
    ) -> AugmentedPrompt: ...

    async def get_template(self, template_id: str, timeout: float | None) -> ThoughtTemplate: ...

    async def index_info(self, timeout: float | None) -> IndexInfo: ...

    async def close(self) -> None: ...


class AioGrpcBackend:
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

    async def _unary(self, call: UnaryCall[T], timeout: float | None) -> T:
        method = getattr(self._open_stub(), call.method)
        try:
            reply = await method(call.request, timeout=self.settings.deadline(timeout),
                                 metadata=self.settings.metadata())
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc
        return call.parse(reply)

    async def retrieve(self, query: RetrievalQuery, timeout: float | None) -> RetrievalResult:
        return await self._unary(retrieve_call(query), timeout)

    async def retrieve_batch(
        self, queries: Sequence[RetrievalQuery], timeout: float | None
    ) -> list[RetrievalResult]:
        return await self._unary(retrieve_batch_call(queries), timeout)

    async def augment(
        self, query: RetrievalQuery, max_template_tokens: int | None, timeout: float | None
    ) -> AugmentedPrompt:
        return await self._unary(augment_call(query, max_template_tokens), timeout)

    async def get_template(self, template_id: str, timeout: float | None) -> ThoughtTemplate:
        return await self._unary(get_template_call(template_id), timeout)

    async def index_info(self, timeout: float | None) -> IndexInfo:
        return await self._unary(index_info_call(), timeout)

    async def close(self) -> None:
        self._closed = True
        if self._channel is not None:
            await self._channel.close()


class ThreadedBackend:
    """Runs a sync ``Backend`` in worker threads, so in-process retrieval never blocks the loop."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.address = backend.address

    async def retrieve(self, query: RetrievalQuery, timeout: float | None) -> RetrievalResult:
        return await asyncio.to_thread(self.backend.retrieve, query, timeout)

    async def retrieve_batch(
        self, queries: Sequence[RetrievalQuery], timeout: float | None
    ) -> list[RetrievalResult]:
        return await asyncio.to_thread(self.backend.retrieve_batch, queries, timeout)

    async def augment(
        self, query: RetrievalQuery, max_template_tokens: int | None, timeout: float | None
    ) -> AugmentedPrompt:
        return await asyncio.to_thread(self.backend.augment, query, max_template_tokens, timeout)

    async def get_template(self, template_id: str, timeout: float | None) -> ThoughtTemplate:
        return await asyncio.to_thread(self.backend.get_template, template_id, timeout)

    async def index_info(self, timeout: float | None) -> IndexInfo:
        return await asyncio.to_thread(self.backend.index_info, timeout)

    async def close(self) -> None:
        self.backend.close()


class AsyncThoughtbankClient:
    """asyncio client; ``async with`` it or ``await close()``. Settings as ``ThoughtbankClient``.

    >>> async with AsyncThoughtbankClient("127.0.0.1:50051") as client:  # doctest: +SKIP
    ...     result = await client.retrieve("What is 3 + 4?")
    """

    def __init__(
        self,
        address: str | AsyncBackend,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
        root_certificates: bytes | Path | str | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        wait_for_ready: bool = False,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Connect to ``address`` (``host:port``); a backend is used as it is, unconfigured."""
        self._backend = address if not isinstance(address, str) else AioGrpcBackend(
            ConnectionSettings(
                address=address, timeout=timeout, token=token,
                root_certificates=root_certificates, retry=retry, wait_for_ready=wait_for_ready,
                channel_options=tuple(channel_options),
            )
        )
        self.address = self._backend.address

    @classmethod
    def local(cls, index_dir: Path | str) -> AsyncThoughtbankClient:
        """The same API over an index loaded in this process; calls run in worker threads."""
        return cls(ThreadedBackend(LocalBackend(Path(index_dir))))

    async def retrieve(
        self, query: str | RetrievalQuery, k: int = DEFAULT_K, task: str = "", *,
        min_score: float | None = None, diversity: float = 0.0, timeout: float | None = None,
    ) -> RetrievalResult:
        """Top-``k`` templates for ``query`` (a text, or a ``RetrievalQuery`` for every option)."""
        request = make_query(query, k, task, min_score, diversity)
        return await self._backend.retrieve(request, timeout)

    async def retrieve_batch(
        self, queries: Sequence[str | RetrievalQuery], k: int = DEFAULT_K, task: str = "", *,
        timeout: float | None = None,
    ) -> list[RetrievalResult]:
        """One result per query, in order, from a single call (embedded as one batch)."""
        requests = [make_query(q, k, task, None, 0.0) for q in queries]
        return await self._backend.retrieve_batch(requests, timeout)

    async def augment(
        self, query: str | RetrievalQuery, k: int = DEFAULT_K, task: str = "", *,
        min_score: float | None = None, diversity: float = 0.0,
        max_template_tokens: int | None = None, timeout: float | None = None,
    ) -> AugmentedPrompt:
        """The FusionFactory-style prompt for ``query`` with the templates it was built from."""
        request = make_query(query, k, task, min_score, diversity)
        return await self._backend.augment(request, max_template_tokens, timeout)

    async def get_template(
        self, template_id: str, *, timeout: float | None = None
    ) -> ThoughtTemplate:
        return await self._backend.get_template(template_id, timeout)

    async def index_info(self, *, timeout: float | None = None) -> IndexInfo:
        return await self._backend.index_info(timeout)

    async def close(self) -> None:
        await self._backend.close()

    async def __aenter__(self) -> AsyncThoughtbankClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
