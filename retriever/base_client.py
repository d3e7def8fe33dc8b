"""What the sync and the asyncio client share: connection settings, the calls they make and the
client surface that is not I/O, in the manner of httpx's ``BaseClient``.

Each API call is described once, as a ``Call``: its RPC with request and reply parser, and its
in-process form. A transport only carries calls; the clients build them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, Protocol, TypeVar

import grpc
from google.protobuf.message import Message

from thoughtbank.protos import SERVICE_NAME, pb2
from thoughtbank.retriever import conversions as convert
from thoughtbank.retriever.types import (
    DEFAULT_MAX_RESPONSE_BYTES,
    AugmentedPrompt,
    IndexInfo,
    RetrievalQuery,
    RetrievalResult,
)
from thoughtbank.schema import OutcomeRecord, ThoughtTemplate

DEFAULT_TIMEOUT = 30.0
T = TypeVar("T")


class Addressed(Protocol):
    address: str


TransportT = TypeVar("TransportT", bound=Addressed)


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
        """The channel's options; ``channel_options`` replace the defaults they name."""
        defaults = {
            "grpc.service_config": json.dumps(self.service_config()),
            "grpc.enable_retries": int(self.retry is not None),
            # Accept what a server sends by default, not gRPC's 4 MiB: a batch answer is larger.
            "grpc.max_receive_message_length": DEFAULT_MAX_RESPONSE_BYTES,
        }
        return list({**defaults, **dict(self.channel_options)}.items())

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


class LocalRetrieval(Protocol):
    """What an in-process engine offers a client (``thoughtbank.retriever.serving``'s
    ``RetrievalEngine``, imported only by ``.local``)."""

    def retrieve(self, request: RetrievalQuery) -> RetrievalResult: ...

    def retrieve_batch(self, requests: Sequence[RetrievalQuery]) -> list[RetrievalResult]: ...

    def augment(
        self, request: RetrievalQuery, max_template_tokens: int | None = None
    ) -> AugmentedPrompt: ...

    def get_template(self, template_id: str) -> ThoughtTemplate: ...

    def info(self) -> IndexInfo: ...

    def record_outcomes(self, records: Sequence[OutcomeRecord]) -> list[bool]: ...


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: the stub method's name, its request, how to read its reply, and the same
    call made in-process."""

    method: str
    request: Message
    parse: Callable[[Any], T]
    run_local: Callable[[LocalRetrieval], T]


def make_query(
    query: str | RetrievalQuery,
    k: int,
    task: str,
    min_score: float | None,
    diversity: float,
) -> RetrievalQuery:
    """A ``RetrievalQuery`` from a text and settings; a given ``RetrievalQuery`` wins as is."""
    if isinstance(query, RetrievalQuery):
        return query
    return RetrievalQuery(query, k=k, task=task, min_score=min_score, diversity=diversity)


def retrieve_call(query: RetrievalQuery) -> Call[RetrievalResult]:
    return Call(
        "Retrieve",
        convert.query_to_pb(query),
        convert.result_from_pb,
        lambda engine: engine.retrieve(query),
    )


def retrieve_batch_call(queries: Sequence[RetrievalQuery]) -> Call[list[RetrievalResult]]:
    request = pb2.RetrieveBatchRequest(requests=[convert.query_to_pb(q) for q in queries])
    return Call(
        "RetrieveBatch",
        request,
        lambda reply: [convert.result_from_pb(r) for r in reply.responses],
        lambda engine: engine.retrieve_batch(queries),
    )


def augment_call(query: RetrievalQuery, max_template_tokens: int | None) -> Call[AugmentedPrompt]:
    request = convert.augment_request_to_pb(query, max_template_tokens)
    return Call(
        "AugmentPrompt",
        request,
        convert.augmented_from_pb,
        lambda engine: engine.augment(query, max_template_tokens),
    )


def get_template_call(template_id: str) -> Call[ThoughtTemplate]:
    return Call(
        "GetTemplate",
        pb2.GetTemplateRequest(id=template_id),
        lambda reply: convert.template_from_pb(reply.template),
        lambda engine: engine.get_template(template_id),
    )


def index_info_call() -> Call[IndexInfo]:
    return Call(
        "GetIndexInfo",
        pb2.GetIndexInfoRequest(),
        convert.info_from_pb,
        lambda engine: engine.info(),
    )


def record_outcome_call(outcome: OutcomeRecord) -> Call[bool]:
    return Call(
        "RecordOutcome",
        convert.outcome_to_pb(outcome),
        lambda reply: bool(reply.recorded),
        lambda engine: engine.record_outcomes([outcome])[0],
    )


def record_outcomes_call(outcomes: Sequence[OutcomeRecord]) -> Call[list[bool]]:
    request = pb2.RecordOutcomesRequest(outcomes=[convert.outcome_to_pb(o) for o in outcomes])
    return Call(
        "RecordOutcomes",
        request,
        lambda reply: [bool(r.recorded) for r in reply.results],
        lambda engine: engine.record_outcomes(outcomes),
    )


class BaseClient(Generic[TransportT]):
    """The constructor and the request building of both clients; subclasses add the I/O.

    ``timeout`` is the default deadline in seconds; every method takes its own ``timeout`` too.
    ``token`` is sent as ``authorization: Bearer <token>``; ``root_certificates`` (PEM bytes or a
    path) switches to TLS. Errors are ``ThoughtbankError`` subclasses with the gRPC ``code``.
    """

    def __init__(
        self,
        address: str | TransportT,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
        root_certificates: bytes | Path | str | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        wait_for_ready: bool = False,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Connect to ``address`` (``host:port``); a transport is used as it is, unconfigured."""
        if isinstance(address, str):
            settings = ConnectionSettings(
                address=address,
                timeout=timeout,
                token=token,
                root_certificates=root_certificates,
                retry=retry,
                wait_for_ready=wait_for_ready,
                channel_options=tuple(channel_options),
            )
            self._transport = self._connect(settings)
        else:
            self._transport = address
        self.address = self._transport.address

    def _connect(self, settings: ConnectionSettings) -> TransportT:
        raise NotImplementedError

    @staticmethod
    def _retrieve(
        query: str | RetrievalQuery,
        k: int,
        task: str,
        min_score: float | None,
        diversity: float,
    ) -> Call[RetrievalResult]:
        return retrieve_call(make_query(query, k, task, min_score, diversity))

    @staticmethod
    def _retrieve_batch(
        queries: Sequence[str | RetrievalQuery], k: int, task: str
    ) -> Call[list[RetrievalResult]]:
        return retrieve_batch_call([make_query(q, k, task, None, 0.0) for q in queries])

    @staticmethod
    def _augment(
        query: str | RetrievalQuery,
        k: int,
        task: str,
        min_score: float | None,
        diversity: float,
        max_template_tokens: int | None,
    ) -> Call[AugmentedPrompt]:
        request = make_query(query, k, task, min_score, diversity)
        return augment_call(request, max_template_tokens)
