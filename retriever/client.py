"""Client SDK for thoughtbank: typed results, mapped errors, retries, auth, TLS, closable channels.

``ThoughtbankClient`` talks to a server over gRPC, or, built with ``ThoughtbankClient.local``, runs
the same retrieval in-process. Both go through a ``Backend``, so every method has one meaning
whichever way it is served. The connection settings (``ConnectionSettings``) are shared with the
asyncio client in ``thoughtbank.retriever.aio_client``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Generic, Protocol, TypeVar

import grpc
from google.protobuf.message import Message

from thoughtbank.protos import SERVICE_NAME, pb2, pb2_grpc
from thoughtbank.retriever import conversions as convert
from thoughtbank.retriever.errors import error_from_rpc
from thoughtbank.retriever.types import (
    DEFAULT_K,
    AugmentedPrompt,
    IndexInfo,
    RetrievalQuery,
    RetrievalResult,
)
from thoughtbank.schema import ThoughtTemplate

DEFAULT_TIMEOUT = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC retry policy, applied by the channel itself through its service config.

    gRPC caps ``max_attempts`` at 5 and draws each backoff at random up to the current ceiling
    (``initial_backoff * backoff_multiplier**n``, at most ``max_backoff``).
    """

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    backoff_multiplier: float = 2.0
    retryable_codes: tuple[grpc.StatusCode, ...] = (grpc.StatusCode.UNAVAILABLE,)

    def to_service_config(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff}s",
            "maxBackoff": f"{self.max_backoff}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": [code.name for code in self.retryable_codes],
        }


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach a server; one place that both the sync and the asyncio client read.

    ``wait_for_ready`` makes calls wait (up to their deadline) for a server that is not up yet
    instead of failing at once; with it, the channel also watches the server's health service,
    so calls are not sent to a server that is still loading its index.
    """

    address: str
    timeout: float = DEFAULT_TIMEOUT
    token: str | None = None
    root_certificates: bytes | Path | str | None = None
    retry: RetryPolicy | None = DEFAULT_RETRY
    wait_for_ready: bool = False
    channel_options: tuple[tuple[str, Any], ...] = ()

    def service_config(self) -> dict[str, Any]:
        method_config: dict[str, Any] = {
            "name": [{"service": SERVICE_NAME}],
            "waitForReady": self.wait_for_ready,
        }
        if self.retry is not None:
            method_config["retryPolicy"] = self.retry.to_service_config()
        config: dict[str, Any] = {"methodConfig": [method_config]}
        if self.wait_for_ready:
            config["loadBalancingConfig"] = [{"round_robin": {}}]
            config["healthCheckConfig"] = {"serviceName": SERVICE_NAME}
        return config

    def options(self) -> list[tuple[str, Any]]:
        return [
            ("grpc.service_config", json.dumps(self.service_config())),
            ("grpc.enable_retries", int(self.retry is not None)),
            *self.channel_options,
        ]

    def open_channel(self, flavour: ModuleType = grpc) -> Any:
        """A ``grpc`` or ``grpc.aio`` channel (their factories match) to the server."""
        credentials = self.credentials()
        if credentials is None:
            return flavour.insecure_channel(self.address, options=self.options())
        return flavour.secure_channel(self.address, credentials, options=self.options())

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials when root certificates are given; ``None`` means plaintext."""
        roots = self.root_certificates
        if roots is None:
            return None
        if not isinstance(roots, bytes):
            roots = Path(roots).read_bytes()
        return grpc.ssl_channel_credentials(root_certificates=roots)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def deadline(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout


def make_query(
    query: str | RetrievalQuery, k: int, task: str, min_score: float | None, diversity: float,
) -> RetrievalQuery:
    """A ``RetrievalQuery`` from a text and settings; a given ``RetrievalQuery`` wins as is."""
    if isinstance(query, RetrievalQuery):
        return query
    return RetrievalQuery(query, k=k, task=task, min_score=min_score, diversity=diversity)


@dataclass(frozen=True)
class UnaryCall(Generic[T]):
    """One RPC to make: the stub method's name, its request, and how to read its response."""

    method: str
    request: Message
    parse: Callable[[Any], T]


def retrieve_call(query: RetrievalQuery) -> UnaryCall[RetrievalResult]:
    return UnaryCall("Retrieve", convert.query_to_pb(query), convert.result_from_pb)


def retrieve_batch_call(queries: Sequence[RetrievalQuery]) -> UnaryCall[list[RetrievalResult]]:
    request = pb2.RetrieveBatchRequest(requests=[convert.query_to_pb(q) for q in queries])
    return UnaryCall("RetrieveBatch", request,
                     lambda reply: [convert.result_from_pb(r) for r in reply.responses])


def augment_call(
    query: RetrievalQuery, max_template_tokens: int | None
) -> UnaryCall[AugmentedPrompt]:
    request = convert.augment_request_to_pb(query, max_template_tokens)
    return UnaryCall("AugmentPrompt", request, convert.augmented_from_pb)


def get_template_call(template_id: str) -> UnaryCall[ThoughtTemplate]:
    return UnaryCall("GetTemplate", pb2.GetTemplateRequest(id=template_id),
                     lambda reply: convert.template_from_pb(reply.template))


def index_info_call() -> UnaryCall[IndexInfo]:
    return UnaryCall("GetIndexInfo", pb2.GetIndexInfoRequest(), convert.info_from_pb)


class Backend(Protocol):
    """What serves a client's calls: a gRPC channel or an in-process ``RetrievalEngine``."""

    address: str

    def retrieve(self, query: RetrievalQuery, timeout: float | None) -> RetrievalResult: ...

    def retrieve_batch(
        self, queries: Sequence[RetrievalQuery], timeout: float | None
    ) -> list[RetrievalResult]: ...

    def augment(
        self, query: RetrievalQuery, max_template_tokens: int | None, timeout: float | None
    ) -> AugmentedPrompt: ...

    def get_template(self, template_id: str, timeout: float | None) -> ThoughtTemplate: ...

    def index_info(self, timeout: float | None) -> IndexInfo: ...

    def close(self) -> None: ...


class GrpcBackend:
    """Calls a server over one gRPC channel."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.address = settings.address
        self._channel: grpc.Channel = settings.open_channel(grpc)
        self._stub = pb2_grpc.ThoughtTemplateServiceStub(self._channel)

    def _unary(self, call: UnaryCall[T], timeout: float | None) -> T:
        method = getattr(self._stub, call.method)
        try:
            reply = method(call.request, timeout=self.settings.deadline(timeout),
                           metadata=self.settings.metadata())
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc
        return call.parse(reply)

    def retrieve(self, query: RetrievalQuery, timeout: float | None) -> RetrievalResult:
        return self._unary(retrieve_call(query), timeout)

    def retrieve_batch(
        self, queries: Sequence[RetrievalQuery], timeout: float | None
    ) -> list[RetrievalResult]:
        return self._unary(retrieve_batch_call(queries), timeout)

    def augment(
        self, query: RetrievalQuery, max_template_tokens: int | None, timeout: float | None
    ) -> AugmentedPrompt:
        return self._unary(augment_call(query, max_template_tokens), timeout)

    def get_template(self, template_id: str, timeout: float | None) -> ThoughtTemplate:
        return self._unary(get_template_call(template_id), timeout)

    def index_info(self, timeout: float | None) -> IndexInfo:
        return self._unary(index_info_call(), timeout)

    def close(self) -> None:
        self._channel.close()


class LocalBackend:
    """Serves calls from an index loaded in this process; timeouts do not apply.

    The engine (FAISS, the embedding model) is imported here, not at module level, so that apps
    that only talk to a server never load it.
    """

    def __init__(self, index_dir: Path) -> None:
        from thoughtbank.retriever.serving.engine import RetrievalEngine

        self.retriever = RetrievalEngine.open(index_dir)
        self.address = f"local:{index_dir}"

    def retrieve(self, query: RetrievalQuery, timeout: float | None) -> RetrievalResult:
        return self.retriever.retrieve(query)

    def retrieve_batch(
        self, queries: Sequence[RetrievalQuery], timeout: float | None
    ) -> list[RetrievalResult]:
        return self.retriever.retrieve_batch(queries)

    def augment(
        self, query: RetrievalQuery, max_template_tokens: int | None, timeout: float | None
    ) -> AugmentedPrompt:
        return self.retriever.augment(query, max_template_tokens)

    def get_template(self, template_id: str, timeout: float | None) -> ThoughtTemplate:
        return self.retriever.get_template(template_id)

    def index_info(self, timeout: float | None) -> IndexInfo:
        return self.retriever.info()

    def close(self) -> None:
        """Nothing to release: the index lives as long as the client object."""


class ThoughtbankClient:
    """Synchronous client; use it as a context manager or call ``close()``.

    ``timeout`` is the default deadline in seconds; every method takes its own ``timeout`` too.
    ``token`` is sent as ``authorization: Bearer <token>``; ``root_certificates`` (PEM bytes or a
    path) switches to TLS. Errors are ``ThoughtbankError`` subclasses with the gRPC ``code``.

    >>> with ThoughtbankClient("127.0.0.1:50051") as client:  # doctest: +SKIP
    ...     for hit in client.retrieve("What is 3 + 4?").hits:
    ...         print(hit.score, hit.template.text)
    """

    def __init__(
        self,
        address: str | Backend,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
        root_certificates: bytes | Path | str | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        wait_for_ready: bool = False,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Connect to ``address`` (``host:port``); a ``Backend`` is used as it is, unconfigured."""
        self._backend = address if not isinstance(address, str) else GrpcBackend(
            ConnectionSettings(
                address=address, timeout=timeout, token=token,
                root_certificates=root_certificates, retry=retry, wait_for_ready=wait_for_ready,
                channel_options=tuple(channel_options),
            )
        )
        self.address = self._backend.address

    @classmethod
    def local(cls, index_dir: Path | str) -> ThoughtbankClient:
        """The same API over an index loaded in this process, for notebooks and batch jobs."""
        return cls(LocalBackend(Path(index_dir)))

    def retrieve(
        self, query: str | RetrievalQuery, k: int = DEFAULT_K, task: str = "", *,
        min_score: float | None = None, diversity: float = 0.0, timeout: float | None = None,
    ) -> RetrievalResult:
        """Top-``k`` templates for ``query`` (a text, or a ``RetrievalQuery`` for every option)."""
        request = make_query(query, k, task, min_score, diversity)
        return self._backend.retrieve(request, timeout)

    def retrieve_batch(
        self, queries: Sequence[str | RetrievalQuery], k: int = DEFAULT_K, task: str = "", *,
        timeout: float | None = None,
    ) -> list[RetrievalResult]:
        """One result per query, in order, from a single call (embedded as one batch)."""
        requests = [make_query(q, k, task, None, 0.0) for q in queries]
        return self._backend.retrieve_batch(requests, timeout)

    def augment(
        self, query: str | RetrievalQuery, k: int = DEFAULT_K, task: str = "", *,
        min_score: float | None = None, diversity: float = 0.0,
        max_template_tokens: int | None = None, timeout: float | None = None,
    ) -> AugmentedPrompt:
        """The FusionFactory-style prompt for ``query`` with the templates it was built from."""
        request = make_query(query, k, task, min_score, diversity)
        return self._backend.augment(request, max_template_tokens, timeout)

    def get_template(self, template_id: str, *, timeout: float | None = None) -> ThoughtTemplate:
        return self._backend.get_template(template_id, timeout)

    def index_info(self, *, timeout: float | None = None) -> IndexInfo:
        return self._backend.index_info(timeout)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> ThoughtbankClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
