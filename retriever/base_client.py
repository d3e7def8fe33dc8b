"""What the sync and the asyncio client share: connection settings, the calls they make and the
client surface that is not I/O, in the manner of httpx's ``BaseClient``.

Each API call is described once, as a ``Call``: its RPC with request and reply parser, and its
in-process form. A transport only carries calls; the clients build them.
"""

from __future__ import annotations

import json
import socket
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
    DEFAULT_NAMESPACE,
    AugmentedPrompt,
    IndexInfo,
    NamespaceInfo,
    RetrievalQuery,
    RetrievalResult,
)
from thoughtbank.schema import OutcomeRecord, ThoughtTemplate

DEFAULT_TIMEOUT = 30.0
# gRPC's own ceiling is 120 s: a replica down for a while would wait that long for calls again.
MAX_RECONNECT_BACKOFF_MS = 5_000
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
    # CANCELLED too: grpc core answers so for a call that reached a server in the instant it
    # stopped (grpc/grpc#41785). Every RPC is safe to repeat (outcomes carry their own id), and
    # a call the app cancels itself is never retried.
    retryable_codes: tuple[grpc.StatusCode, ...] = (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
    )

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

    @property
    def replicated(self) -> bool:
        """Whether the address may stand for several servers (a list, or a resolver target)."""
        return "," in self.address or ":///" in self.address

    def service_config(self) -> dict[str, Any]:
        method_config: dict[str, Any] = {
            "name": [{"service": SERVICE_NAME}],
            "waitForReady": self.wait_for_ready,
        }
        if self.retry is not None:
            method_config["retryPolicy"] = self.retry.to_service_config()
        config: dict[str, Any] = {"methodConfig": [method_config]}
        if self.wait_for_ready or self.replicated:
            # gRPC's own balancing: calls go round the ready servers, and a server whose
            # health service says NOT_SERVING (loading, draining) gets none.
            config["loadBalancingConfig"] = [{"round_robin": {}}]
            config["healthCheckConfig"] = {"serviceName": SERVICE_NAME}
        return config

    def options(self) -> list[tuple[str, Any]]:
        """The channel's options; ``channel_options`` replace the defaults they name."""
        defaults: dict[str, Any] = {
            "grpc.service_config": json.dumps(self.service_config()),
            "grpc.enable_retries": int(self.retry is not None),
            # Accept what a server sends by default, not gRPC's 4 MiB: a batch answer is larger.
            "grpc.max_receive_message_length": DEFAULT_MAX_RESPONSE_BYTES,
        }
        if self.replicated:  # a replica back from a restart gets calls within seconds
            defaults["grpc.max_reconnect_backoff_ms"] = MAX_RECONNECT_BACKOFF_MS
        if "," in self.address:  # TLS checks the first server's name, as a DNS target would
            defaults["grpc.default_authority"] = self.address.split(",")[0].strip()
        return list({**defaults, **dict(self.channel_options)}.items())

    def open_channel(self, flavour: ModuleType = grpc) -> Any:
        """A ``grpc`` or ``grpc.aio`` channel (their factories match) to the server(s)."""
        target = channel_target(self.address)
        credentials = self.credentials()
        if credentials is None:
            return flavour.insecure_channel(target, options=self.options())
        return flavour.secure_channel(target, credentials, options=self.options())

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


def channel_target(address: str) -> str:
    """The gRPC target for ``address``: as it is, unless it lists several ``host:port``; those
    become one ``ipv4:``/``ipv6:`` target of their addresses (names resolved once, here: for
    servers whose addresses change, use ``dns:///name:port``, which gRPC resolves again)."""
    if "," not in address:
        return address
    resolved = [_resolve(part.strip()) for part in address.split(",") if part.strip()]
    families = {family for family, _ in resolved}
    if len(families) != 1:
        raise ValueError(f"{address!r} mixes IPv4 and IPv6 servers; list one kind, or use dns:///")
    (family,) = families
    return f"{family}:" + ",".join(hostport for _, hostport in resolved)


def _resolve(hostport: str) -> tuple[str, str]:
    """(``ipv4`` or ``ipv6``, ``ip:port``) of one ``host:port`` of an address list."""
    host, colon, port = hostport.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ValueError(f"{hostport!r} in a server list is not host:port")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve {host!r} of the server list: {exc}") from exc
    family, *_rest, sockaddr = min(infos, key=lambda info: info[0] != socket.AF_INET)
    ip = str(sockaddr[0])
    if family == socket.AF_INET6:
        return "ipv6", f"[{ip}]:{port}"
    return "ipv4", f"{ip}:{port}"


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
    """One API call: the stub method's name, its request, how to read its reply, the same
    call made in-process, and the namespace it reads."""

    method: str
    request: Message
    parse: Callable[[Any], T]
    run_local: Callable[[LocalRetrieval], T]
    namespace: str = ""


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


def retrieve_call(query: RetrievalQuery, namespace: str = "") -> Call[RetrievalResult]:
    return Call(
        "Retrieve",
        convert.query_to_pb(query, namespace),
        convert.result_from_pb,
        lambda engine: engine.retrieve(query),
        namespace,
    )


def retrieve_batch_call(
    queries: Sequence[RetrievalQuery], namespace: str = ""
) -> Call[list[RetrievalResult]]:
    request = pb2.RetrieveBatchRequest(
        requests=[convert.query_to_pb(q) for q in queries], namespace=namespace
    )
    return Call(
        "RetrieveBatch",
        request,
        lambda reply: [convert.result_from_pb(r) for r in reply.responses],
        lambda engine: engine.retrieve_batch(queries),
        namespace,
    )


def augment_call(
    query: RetrievalQuery, max_template_tokens: int | None, namespace: str = ""
) -> Call[AugmentedPrompt]:
    request = convert.augment_request_to_pb(query, max_template_tokens, namespace)
    return Call(
        "AugmentPrompt",
        request,
        convert.augmented_from_pb,
        lambda engine: engine.augment(query, max_template_tokens),
        namespace,
    )


def get_template_call(template_id: str, namespace: str = "") -> Call[ThoughtTemplate]:
    return Call(
        "GetTemplate",
        pb2.GetTemplateRequest(id=template_id, namespace=namespace),
        lambda reply: convert.template_from_pb(reply.template),
        lambda engine: engine.get_template(template_id),
        namespace,
    )


def index_info_call(namespace: str = "") -> Call[IndexInfo]:
    return Call(
        "GetIndexInfo",
        pb2.GetIndexInfoRequest(namespace=namespace),
        convert.info_from_pb,
        lambda engine: engine.info(),
        namespace,
    )


def record_outcome_call(outcome: OutcomeRecord, namespace: str = "") -> Call[bool]:
    return Call(
        "RecordOutcome",
        convert.outcome_to_pb(outcome, namespace),
        lambda reply: bool(reply.recorded),
        lambda engine: engine.record_outcomes([outcome])[0],
        namespace,
    )


def record_outcomes_call(
    outcomes: Sequence[OutcomeRecord], namespace: str = ""
) -> Call[list[bool]]:
    request = pb2.RecordOutcomesRequest(
        outcomes=[convert.outcome_to_pb(o) for o in outcomes], namespace=namespace
    )
    return Call(
        "RecordOutcomes",
        request,
        lambda reply: [bool(r.recorded) for r in reply.results],
        lambda engine: engine.record_outcomes(outcomes),
        namespace,
    )


def _local_namespaces(engine: LocalRetrieval) -> list[NamespaceInfo]:
    info = engine.info()
    return [NamespaceInfo(DEFAULT_NAMESPACE, info.index_version, info.count)]


def list_namespaces_call() -> Call[list[NamespaceInfo]]:
    return Call(
        "ListNamespaces",
        pb2.ListNamespacesRequest(),
        convert.namespaces_from_pb,
        _local_namespaces,
    )


class BaseClient(Generic[TransportT]):
    """The constructor and the request building of both clients; subclasses add the I/O.

    ``address`` is ``host:port``, several of them (``host1:port,host2:port``: replicas, each
    call to the next ready one) or a gRPC target such as ``dns:///name:port`` (every address
    the name resolves to). ``timeout`` is the default deadline in seconds; every method takes
    its own ``timeout`` too. ``token`` is sent as ``authorization: Bearer <token>``;
    ``root_certificates`` (PEM bytes or a path) switches to TLS. ``namespace`` is what every
    call reads unless it names another ('' = the server's ``default``). Errors are
    ``ThoughtbankError`` subclasses with the gRPC ``code``.
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
        namespace: str = "",
    ) -> None:
        """Connect to ``address``; a transport is used as it is, unconfigured."""
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
        self.namespace = namespace

    def _connect(self, settings: ConnectionSettings) -> TransportT:
        raise NotImplementedError

    def _in(self, namespace: str | None) -> str:
        return self.namespace if namespace is None else namespace

    def _retrieve(
        self,
        query: str | RetrievalQuery,
        k: int,
        task: str,
        min_score: float | None,
        diversity: float,
        namespace: str | None,
    ) -> Call[RetrievalResult]:
        request = make_query(query, k, task, min_score, diversity)
        return retrieve_call(request, self._in(namespace))

    def _retrieve_batch(
        self, queries: Sequence[str | RetrievalQuery], k: int, task: str, namespace: str | None
    ) -> Call[list[RetrievalResult]]:
        requests = [make_query(q, k, task, None, 0.0) for q in queries]
        return retrieve_batch_call(requests, self._in(namespace))

    def _augment(
        self,
        query: str | RetrievalQuery,
        k: int,
        task: str,
        min_score: float | None,
        diversity: float,
        max_template_tokens: int | None,
        namespace: str | None,
    ) -> Call[AugmentedPrompt]:
        request = make_query(query, k, task, min_score, diversity)
        return augment_call(request, max_template_tokens, self._in(namespace))

    def _get_template(self, template_id: str, namespace: str | None) -> Call[ThoughtTemplate]:
        return get_template_call(template_id, self._in(namespace))

    def _index_info(self, namespace: str | None) -> Call[IndexInfo]:
        return index_info_call(self._in(namespace))

    def _record_outcome(self, outcome: OutcomeRecord, namespace: str | None) -> Call[bool]:
        return record_outcome_call(outcome, self._in(namespace))

    def _record_outcomes(
        self, outcomes: Sequence[OutcomeRecord], namespace: str | None
    ) -> Call[list[bool]]:
        return record_outcomes_call(outcomes, self._in(namespace))
