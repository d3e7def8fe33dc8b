"""gRPC server for ``thoughtbank.v1.ThoughtTemplateService`` (grpc.aio with micro-batching).

Retrieval and the other internals live in ``thoughtbank.retriever.serving``; this module maps
RPCs onto them and wires the operational parts: bearer-token auth, a concurrency limit, status
codes with clear messages, Prometheus metrics, health (NOT_SERVING while loading and draining),
reflection, TLS, hot reload of the index (CURRENT watched, SIGHUP) and draining on SIGTERM.

grpc.aio, because the event loop only moves bytes while the micro-batcher's threads embed and
search: batches of concurrent queries cost little more than one query.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from thoughtbank.cli_common import Commands, quiet_model_loading
from thoughtbank.echo import clip, echo
from thoughtbank.extras import require_ui
from thoughtbank.index import LoadedIndex, default_threads, use_threads
from thoughtbank.protos import SERVICE_NAME, pb2
from thoughtbank.retriever.errors import (
    INDEX_LOADING_MESSAGE,
    DeadlineExceededError,
    IndexUnavailableError,
    InvalidRequestError,
    ServerOverloadedError,
    ThoughtbankError,
)
from thoughtbank.retriever.prompt import load_prompt_template
from thoughtbank.retriever.serving import conversions as convert
from thoughtbank.retriever.serving.access import AccessTable, Grant, reload_access
from thoughtbank.retriever.serving.config import ServerConfig, add_config_flags, config_from_args
from thoughtbank.retriever.serving.engine import (
    EmbeddingChoice,
    RetrievalEngine,
    all_or_first_error,
)
from thoughtbank.retriever.serving.feedback import UsefulnessRanking, follow_outcomes
from thoughtbank.retriever.serving.micro_batcher import MicroBatcher
from thoughtbank.retriever.serving.namespaces import Namespace, NamespaceHooks, Namespaces
from thoughtbank.retriever.serving.observability import ServerMetrics, configure_logging
from thoughtbank.retriever.serving.outbound import OutboundBudget, Reservation
from thoughtbank.retriever.serving.process import LISTENING_PREFIX, METRICS_MARK, READY_PREFIX
from thoughtbank.retriever.serving.reload import load_index_to_start
from thoughtbank.retriever.types import DEFAULT_NAMESPACE, MAX_K, RetrievalQuery, RetrievalResult
from thoughtbank.schema import OutcomeRecord

if TYPE_CHECKING:
    from thoughtbank.retriever.serving.browser.run import BrowserServer

log = logging.getLogger("thoughtbank.server")
T = TypeVar("T", bound=Message)
Item = TypeVar("Item")
Result = TypeVar("Result")
Outcome = RetrievalResult | ThoughtbankError

MIN_CLIENT_PING_INTERVAL_MS = 10_000
# A connection that has not finished its handshake (HTTP/2 settings included) by then is closed,
# so idle sockets cannot hold the connection slots.
HANDSHAKE_TIMEOUT_MS = 10_000
# A connection with no call for this long is closed (clients reconnect transparently).
MAX_CONNECTION_IDLE_MS = 5 * 60_000
# Calls one connection may have open at once; a client queues the rest.
MAX_STREAMS_PER_CONNECTION = 100
# Descriptors kept for everything but client connections: index and model files, the metrics
# port, the CURRENT watcher, gRPC's own pollers and pipes.
RESERVED_FILE_DESCRIPTORS = 64
# Outcomes committed together at most: one fsync each batch, and a batch never waits long.
MAX_OUTCOMES_PER_COMMIT = 512


class RpcGuard:
    """Runs each service RPC with auth, the namespace it names, the concurrency and
    unsent-bytes limits, metrics and status mapping.

    A call counts as in flight, and holds its share of the outbound budget, from admission until
    gRPC reports it ended (its answer written, or the call cancelled): a handler returns before
    its answer is sent, so a client that never reads would otherwise escape both limits.
    """

    def __init__(
        self,
        metrics: ServerMetrics,
        access: AccessTable,
        namespaces: Namespaces,
        max_in_flight: int,
        outbound: OutboundBudget,
    ) -> None:
        self._metrics = metrics
        self.access = access  # replaced whole when the tokens are read again
        self._namespaces = namespaces
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._outbound = outbound

    async def handle(
        self,
        rpc: str,
        context: grpc.aio.ServicerContext,
        namespace: str,
        handler: Callable[[Namespace], Awaitable[T]],
        hits: int = 0,
    ) -> T:
        """Run ``handler`` on the ``namespace`` a request names, for a call whose answer
        carries at most ``hits`` hits (0: a small answer of another kind, reserved as one hit
        and not taught to the estimate)."""

        async def scoped(grant: Grant) -> T:
            return await handler(self._namespaces.resolve(grant, namespace))

        # Only names the server holds become labels: what callers send cannot grow the metrics.
        held = self._namespaces.get(namespace or DEFAULT_NAMESPACE)
        return await self._run(rpc, context, scoped, hits, held.name if held else "")

    async def handle_unscoped(
        self,
        rpc: str,
        context: grpc.aio.ServicerContext,
        handler: Callable[[Grant], Awaitable[T]],
    ) -> T:
        """Run ``handler`` with the caller's grant, for a call that names no namespace."""
        return await self._run(rpc, context, handler, 0, "")

    async def _run(
        self,
        rpc: str,
        context: grpc.aio.ServicerContext,
        handler: Callable[[Grant], Awaitable[T]],
        hits: int,
        label: str,
    ) -> T:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        observed = False

        def observe() -> None:  # before an abort, so a client never sees an uncounted error
            nonlocal observed
            if not observed:
                observed = True
                self._metrics.observe_request(rpc, code.name, label, time.perf_counter() - started)

        try:
            grant = self.access.authenticate(context.invocation_metadata() or ())
            reservation = self._admit(rpc, context, hits)
            response = await handler(grant)
            size = response.ByteSize()
            reservation.resize(size)
            if hits:
                self._outbound.learn(size, hits)
            return response
        except ThoughtbankError as exc:
            code = exc.code
            observe()
            await context.abort(exc.code, clip(exc.message))
            raise  # unreachable: abort raises
        except asyncio.CancelledError:
            remaining = context.time_remaining()
            expired = remaining is not None and remaining <= 0
            code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
            raise
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("unexpected error in %s", rpc)
            observe()
            await context.abort(code, f"internal error in {rpc}; the server log has the details")
            raise  # unreachable: abort raises
        finally:
            observe()

    def _admit(self, rpc: str, context: grpc.aio.ServicerContext, hits: int) -> Reservation:
        if self._in_flight >= self._max_in_flight:
            raise ServerOverloadedError(
                f"server is at its limit of {self._max_in_flight} concurrent requests; "
                "retry with backoff"
            )
        reservation = self._outbound.reserve(context.peer(), hits)
        in_flight = self._metrics.in_flight.labels(rpc)
        self._in_flight += 1
        in_flight.inc()

        def ended(_context: object) -> None:
            reservation.release()
            self._in_flight -= 1
            in_flight.dec()

        context.add_done_callback(ended)
        return reservation


def hits_of(request: pb2.RetrieveRequest | pb2.AugmentPromptRequest) -> int:
    """The most hits a request's answer can carry (a ``k`` out of range fails validation)."""
    return min(max(request.k, 1), MAX_K)


def check_same_namespace(items: Sequence[Any], namespace: str, field: str) -> None:
    """INVALID_ARGUMENT for an item of a batch that names another namespace than the batch."""
    for n, item in enumerate(items):
        if item.namespace and item.namespace != namespace:
            raise InvalidRequestError(
                f"{field}[{n}].namespace {echo(item.namespace)} differs from the call's "
                f"namespace {echo(namespace)}; set it on the call only"
            )


class ThoughtTemplateServicer:
    """Maps RPCs onto the namespaces' live engines; all query embedding goes through the
    micro-batcher.

    ``add_service`` registers one handler per RPC of the service descriptor, so every RPC of
    the proto must have its method here.
    """

    def __init__(
        self,
        namespaces: Namespaces,
        guard: RpcGuard,
        config: ServerConfig,
        metrics: ServerMetrics,
    ) -> None:
        self._namespaces = namespaces
        self._metrics = metrics
        self._guard = guard
        self._max_batch_queries = config.max_batch_queries
        self._max_response_bytes = config.max_response_bytes
        self.batcher: MicroBatcher[tuple[Namespace, RetrievalQuery], Outcome] = MicroBatcher(
            self._retrieve_each,
            config.max_batch_size,
            config.batch_wait_ms / 1000,
            metrics.batch_size.observe,
            workers=config.batch_workers,
            cores=default_threads(),
        )
        # Outcomes arriving together share one durable commit per store, in one writer thread.
        self.outcome_writer: MicroBatcher[tuple[Namespace, OutcomeRecord], bool] = MicroBatcher(
            lambda items, _cores: per_namespace(items, lambda ns, rs: ns.outcomes.record(rs)),
            MAX_OUTCOMES_PER_COMMIT,
            config.batch_wait_ms / 1000,
        )

    @staticmethod
    def _engine(namespace: Namespace) -> RetrievalEngine:
        engine = namespace.live.engine
        if engine is None:
            raise IndexUnavailableError(INDEX_LOADING_MESSAGE)
        return engine

    def _retrieve_each(
        self, items: Sequence[tuple[Namespace, RetrievalQuery]], cores: int
    ) -> list[Outcome]:
        """One batch, each namespace's queries on its engine live when the batch starts (a
        swap waits for the next), on the cores the batcher gives it."""
        use_threads(cores)
        return per_namespace(items, lambda ns, queries: self._engine(ns).retrieve_each(queries))

    async def _retrieve(
        self,
        namespace: Namespace,
        queries: Sequence[RetrievalQuery],
        context: grpc.aio.ServicerContext,
    ) -> list[RetrievalResult]:
        self._check_response_size(self._engine(namespace), queries)  # UNAVAILABLE first
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceededError("the deadline passed before the request was queued")
        return all_or_first_error(await self.batcher.submit_all([(namespace, q) for q in queries]))

    def _check_response_size(
        self, engine: RetrievalEngine, queries: Sequence[RetrievalQuery]
    ) -> None:
        """Refuse, before any work, requests whose answer could exceed what the server sends."""
        bound = engine.response_bound.answers_bytes(q.k for q in queries)
        if bound > self._max_response_bytes:
            raise InvalidRequestError(
                f"the answer could take {bound} bytes, over the limit of "
                f"{self._max_response_bytes} (max_response_bytes); ask for fewer requests or a "
                "smaller k"
            )

    async def Retrieve(
        self, request: pb2.RetrieveRequest, context: grpc.aio.ServicerContext
    ) -> pb2.RetrieveResponse:
        async def run(namespace: Namespace) -> pb2.RetrieveResponse:
            (result,) = await self._retrieve(namespace, [convert.query_from_pb(request)], context)
            return convert.result_to_pb(result)

        return await self._guard.handle(
            "Retrieve", context, request.namespace, run, hits_of(request)
        )

    def _check_batch_size(self, count: int, what: str, unit: str) -> None:
        """INVALID_ARGUMENT for a call carrying more than ``max_batch_queries`` items."""
        if count > self._max_batch_queries:
            raise InvalidRequestError(
                f"{count} {what}, over the limit of {self._max_batch_queries}; split the {unit}"
            )

    async def RetrieveBatch(
        self, request: pb2.RetrieveBatchRequest, context: grpc.aio.ServicerContext
    ) -> pb2.RetrieveBatchResponse:
        async def run(namespace: Namespace) -> pb2.RetrieveBatchResponse:
            self._check_batch_size(len(request.requests), "requests in one batch", "batch")
            check_same_namespace(request.requests, request.namespace, "requests")
            queries = [convert.query_from_pb(r) for r in request.requests]
            results = await self._retrieve(namespace, queries, context)
            return pb2.RetrieveBatchResponse(responses=[convert.result_to_pb(r) for r in results])

        hits = sum(hits_of(r) for r in request.requests)
        return await self._guard.handle("RetrieveBatch", context, request.namespace, run, hits)

    async def AugmentPrompt(
        self, request: pb2.AugmentPromptRequest, context: grpc.aio.ServicerContext
    ) -> pb2.AugmentPromptResponse:
        async def run(namespace: Namespace) -> pb2.AugmentPromptResponse:
            query = convert.query_from_pb(request)
            (result,) = await self._retrieve(namespace, [query], context)
            budget = (
                request.max_template_tokens if request.HasField("max_template_tokens") else None
            )
            augmented = await asyncio.to_thread(
                self._engine(namespace).augment_result, query, result, budget
            )
            return convert.augmented_to_pb(augmented)

        return await self._guard.handle(
            "AugmentPrompt", context, request.namespace, run, hits_of(request)
        )

    async def GetTemplate(
        self, request: pb2.GetTemplateRequest, context: grpc.aio.ServicerContext
    ) -> pb2.GetTemplateResponse:
        async def run(namespace: Namespace) -> pb2.GetTemplateResponse:
            engine = self._engine(namespace)
            return pb2.GetTemplateResponse(
                template=convert.template_to_pb(engine.get_template(request.id)),
                index_version=engine.version,
            )

        return await self._guard.handle("GetTemplate", context, request.namespace, run)

    async def GetIndexInfo(
        self, request: pb2.GetIndexInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb2.GetIndexInfoResponse:
        async def run(namespace: Namespace) -> pb2.GetIndexInfoResponse:
            return convert.info_to_pb(self._engine(namespace).info())

        return await self._guard.handle("GetIndexInfo", context, request.namespace, run)

    async def RecordOutcome(
        self, request: pb2.RecordOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> pb2.RecordOutcomeResponse:
        async def run(namespace: Namespace) -> pb2.RecordOutcomeResponse:
            (recorded,) = await self._record(namespace, [convert.outcome_from_pb(request)])
            return pb2.RecordOutcomeResponse(recorded=recorded)

        return await self._guard.handle("RecordOutcome", context, request.namespace, run)

    async def RecordOutcomes(
        self, request: pb2.RecordOutcomesRequest, context: grpc.aio.ServicerContext
    ) -> pb2.RecordOutcomesResponse:
        async def run(namespace: Namespace) -> pb2.RecordOutcomesResponse:
            self._check_batch_size(len(request.outcomes), "outcomes in one call", "call")
            check_same_namespace(request.outcomes, request.namespace, "outcomes")
            records = [
                convert.outcome_from_pb(message, f"outcomes[{n}].")
                for n, message in enumerate(request.outcomes)
            ]
            recorded = await self._record(namespace, records, batch=True)
            return pb2.RecordOutcomesResponse(
                results=[pb2.RecordOutcomeResponse(recorded=r) for r in recorded]
            )

        return await self._guard.handle("RecordOutcomes", context, request.namespace, run)

    async def _record(
        self, namespace: Namespace, records: Sequence[OutcomeRecord], batch: bool = False
    ) -> list[bool]:
        """Store ``records`` durably; INVALID_ARGUMENT naming the field of a bad one, before
        any is stored."""
        self._engine(namespace).check_outcomes(records, batch)
        recorded = await self.outcome_writer.submit_all([(namespace, r) for r in records])
        self._metrics.observe_outcomes(namespace.name, recorded)
        return recorded

    async def ListNamespaces(
        self, request: pb2.ListNamespacesRequest, context: grpc.aio.ServicerContext
    ) -> pb2.ListNamespacesResponse:
        async def run(grant: Grant) -> pb2.ListNamespacesResponse:
            return pb2.ListNamespacesResponse(
                namespaces=[
                    convert.namespace_to_pb(n.info()) for n in self._namespaces.readable(grant)
                ]
            )

        return await self._guard.handle_unscoped("ListNamespaces", context, run)


def per_namespace(
    items: Sequence[tuple[Namespace, Item]],
    process: Callable[[Namespace, list[Item]], Sequence[Result]],
) -> list[Result]:
    """``process`` run once per namespace on its items, the results back in item order."""
    positions: dict[int, list[int]] = {}
    for n, (namespace, _item) in enumerate(items):
        positions.setdefault(id(namespace), []).append(n)
    results: dict[int, Result] = {}
    for group in positions.values():
        namespace = items[group[0]][0]
        results.update(zip(group, process(namespace, [items[n][1] for n in group]), strict=True))
    return [results[n] for n in range(len(items))]


@dataclass(frozen=True)
class MalformedRequest:
    """Stands in for a request whose bytes are not a valid message of its type."""

    reason: str


def _parse_or_flag(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError as exc:
            return MalformedRequest(str(exc))

    return deserialize


def _reject_malformed(
    rpc: str, implementation: Callable[..., Awaitable[Any]], guard: RpcGuard
) -> Callable[..., Awaitable[Any]]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not isinstance(request, MalformedRequest):
            return await implementation(request, context)

        async def reject() -> NoReturn:
            raise InvalidRequestError(
                f"{rpc} request is not a valid thoughtbank.v1 message: {request.reason}"
            )

        return await guard.handle_unscoped(rpc, context, lambda _grant: reject())

    return handle


def add_service(
    server: grpc.aio.Server, servicer: ThoughtTemplateServicer, guard: RpcGuard
) -> None:
    """The generated registration, except that bytes that do not parse as the request message
    get INVALID_ARGUMENT with the reason (grpc itself would answer UNKNOWN)."""
    service = pb2.DESCRIPTOR.services_by_name["ThoughtTemplateService"]
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            _reject_malformed(method.name, getattr(servicer, method.name), guard),
            request_deserializer=_parse_or_flag(getattr(pb2, method.input_type.name).FromString),
            response_serializer=getattr(pb2, method.output_type.name).SerializeToString,
        )
        for method in service.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))


def connection_limit(requested: int) -> int:
    """``requested``, lowered so that connections never take the descriptors the process needs
    for anything else: past the open-files limit, accept fails and so does reading CURRENT."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return requested
    available = max(1, soft - RESERVED_FILE_DESCRIPTORS)
    if requested > available:
        log.warning(
            "max_connections lowered to fit the open-files limit",
            extra={"requested": requested, "limit": available, "rlimit_nofile": soft},
        )
    return min(requested, available)


def _server_options(config: ServerConfig) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_response_bytes),
        ("grpc.max_allowed_incoming_connections", connection_limit(config.max_connections)),
        ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
        ("grpc.max_connection_idle_ms", MAX_CONNECTION_IDLE_MS),
        ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
        ("grpc.keepalive_time_ms", int(config.keepalive_time * 1000)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
        ("grpc.so_reuseport", 0),
    ]


def _bind(server: grpc.aio.Server, config: ServerConfig) -> int:
    address = f"{config.host}:{config.port}"
    if config.tls_cert and config.tls_key:
        credentials = grpc.ssl_server_credentials(
            [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())]
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind {address}")
    return int(port)


def _engine_settings(config: ServerConfig) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "max_query_chars": config.max_query_chars,
        "max_template_chars": config.max_template_chars,
        "embedding": EmbeddingChoice(config.backend, config.precision),
    }
    if config.prompt_template_file is not None:
        settings["prompt_template"] = load_prompt_template(config.prompt_template_file.read_text())
    return settings


class _Health:
    """The health service, reporting the same status for the server and the service."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self.servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    async def set(self, status: int) -> None:
        for name in ("", SERVICE_NAME):
            await self.servicer.set(name, status)


def _first_index(config: ServerConfig) -> LoadedIndex | None:
    """With ``--index``, its live version, so that a damaged one is refused before binding
    (``IndexDamagedError`` saying what and why); with ``--index-root``, None: each namespace
    is checked as it loads, and a damaged one stops only itself."""
    if config.index_root is not None:
        if not config.index_root.is_dir():
            raise FileNotFoundError(f"index root {config.index_root} does not exist")
        return None
    if config.index_dir is None or not config.index_dir.is_dir():
        raise FileNotFoundError(f"index directory {config.index_dir} does not exist")
    return load_index_to_start(config.index_dir)


async def serve(
    config: ServerConfig,
    on_listening: Callable[[int, int | None], None] | None = None,
    on_serving: Callable[[int], None] | None = None,
) -> None:
    """Bind, load the namespaces, serve, and run until SIGINT/SIGTERM; then drain within grace.

    ``on_listening(port, metrics_port)`` runs once bound (health NOT_SERVING, RPCs UNAVAILABLE
    until an index loads); ``on_serving(port)`` once the namespaces found at start have loaded
    (each live or failed) and at least one is live.
    """
    first_index = await asyncio.to_thread(_first_index, config)
    access = AccessTable.load(config.auth_token_file, config.auth_tokens_file)
    metrics = ServerMetrics()
    metrics_port = (
        metrics.serve_http(config.host, config.metrics_port)
        if config.metrics_port is not None
        else None
    )
    server = grpc.aio.server(options=_server_options(config))
    health_service = _Health(server)
    port = _bind(server, config)
    started = asyncio.Event()  # the namespaces found at start have had their first load
    ready = asyncio.Event()

    async def become_ready_once_live() -> None:
        if started.is_set() and not ready.is_set() and any(n.live.engine for n in namespaces):
            ready.set()
            await health_service.set(health_pb2.HealthCheckResponse.SERVING)
            if on_serving:
                on_serving(port)

    async def on_swap(name: str, engine: RetrievalEngine) -> None:
        metrics.reloads.labels(name, "ok").inc()
        metrics.set_index(name, engine.version, engine.size)
        await become_ready_once_live()

    namespaces = Namespaces(
        config.index_dir,
        config.index_root,
        _engine_settings(config),
        lambda: UsefulnessRanking(config.usefulness_weight, config.exploration),
        NamespaceHooks(
            on_swap,
            on_failure=lambda name: metrics.reloads.labels(name, "failed").inc(),
            on_drop=metrics.forget_index,
        ),
        config.reload_interval,
        first_index,
    )

    def refresh_evidence() -> None:
        for namespace in namespaces:
            try:
                namespace.read_evidence()
            except Exception:  # a locked or damaged store must not stop the others' reads
                log.exception(
                    "reading the outcome store failed; ranking keeps the last evidence",
                    extra={"namespace": namespace.name},
                )
            metrics.retired_templates.labels(namespace.name).set(len(namespace.feedback.retired))

    outbound = OutboundBudget(
        config.max_unsent_bytes_per_connection, config.max_unsent_bytes, metrics.unsent_bytes.set
    )
    guard = RpcGuard(metrics, access, namespaces, config.max_concurrent_rpcs, outbound)
    servicer = ThoughtTemplateServicer(namespaces, guard, config, metrics)
    add_service(server, servicer, guard)
    reflection.enable_server_reflection(
        (SERVICE_NAME, reflection.SERVICE_NAME, health.SERVICE_NAME), server
    )
    await health_service.set(health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    servicer.batcher.start()
    servicer.outcome_writer.start()
    log.info(
        "listening",
        extra={
            "host": config.host,
            "port": port,
            "metrics_port": metrics_port,
            "tls": config.tls_cert is not None,
            "auth": not access.open,
        },
    )
    if on_listening:
        on_listening(port, metrics_port)

    async def start() -> None:
        await namespaces.sync()
        await asyncio.to_thread(refresh_evidence)
        started.set()
        await become_ready_once_live()

    def reread_access() -> None:
        guard.access = reload_access(guard.access, config.auth_token_file, config.auth_tokens_file)

    following = (
        asyncio.get_running_loop().create_task(
            follow_outcomes(refresh_evidence, config.feedback_interval)
        )
        if config.feedback_interval and config.usefulness_weight
        else None
    )
    browser = _start_browser(config, namespaces, guard)
    try:
        await _run_until_stopped(config, namespaces, start, reread_access)
    finally:
        if following is not None:
            following.cancel()
        if browser is not None:
            await asyncio.to_thread(browser.stop)
        namespaces.close()
    await _drain(config, server, health_service, servicer)


def _start_browser(
    config: ServerConfig, namespaces: Namespaces, guard: RpcGuard
) -> BrowserServer | None:
    """With ``--ui-port``, the template browser in a thread of its own, on the engines live
    now and the tokens the RPCs take (the guard's, so that a SIGHUP reload applies)."""
    if config.ui_port is None:
        return None
    require_ui("`thoughtbank serve --ui-port`")
    # Imported only here: the web libraries are the ui extra's, and serving needs none of them.
    from thoughtbank.retriever.serving.browser.app import Shelf
    from thoughtbank.retriever.serving.browser.run import BrowserServer

    shelf = Shelf(
        lambda: {n.name: n.live.engine for n in namespaces},
        lambda: guard.access,
        namespaces.not_held,
    )
    return BrowserServer(shelf, config.ui_host, config.ui_port).start()


async def _run_until_stopped(
    config: ServerConfig,
    namespaces: Namespaces,
    start: Callable[[], Coroutine[Any, Any, None]],
    on_sighup: Callable[[], None],
) -> None:
    """Serve until SIGINT/SIGTERM; on SIGHUP read the tokens again and reload; when enabled,
    follow CURRENT and the index root."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    background: set[asyncio.Task[Any]] = set()
    if config.reload_interval and namespaces.index_root is not None:
        background.add(loop.create_task(namespaces.watch(config.reload_interval)))

    def sighup() -> None:
        log.info("SIGHUP: reading the auth tokens and reloading the index")
        on_sighup()
        task = loop.create_task(namespaces.refresh(force=True))
        background.add(task)
        task.add_done_callback(background.discard)

    loop.add_signal_handler(signal.SIGHUP, sighup)
    starting = loop.create_task(start())
    await stop.wait()
    starting.cancel()
    for task in background:
        task.cancel()


async def _drain(
    config: ServerConfig,
    server: grpc.aio.Server,
    health_service: _Health,
    servicer: ThoughtTemplateServicer,
) -> None:
    """NOT_SERVING, refuse new RPCs, let in-flight ones finish within grace, then stop."""
    log.info("draining", extra={"grace_s": config.grace})
    await health_service.servicer.enter_graceful_shutdown()
    await server.stop(config.grace)
    await servicer.batcher.close()
    await servicer.outcome_writer.close()
    log.info("stopped")


def run_server(
    config: ServerConfig,
    on_listening: Callable[[int, int | None], None] | None = None,
    on_serving: Callable[[int], None] | None = None,
) -> None:
    asyncio.run(serve(config, on_listening, on_serving))


def cmd_serve(args: argparse.Namespace) -> int:
    config = config_from_args(args, os.environ)
    configure_logging(config.log_format, config.log_level)
    quiet_model_loading(False)  # a bar has no place among log lines

    def on_listening(port: int, metrics_port: int | None) -> None:
        metrics = f"{METRICS_MARK}{metrics_port}" if metrics_port is not None else ""
        print(f"{LISTENING_PREFIX}{config.host}:{port}{metrics}", flush=True)

    run_server(
        config,
        on_listening,
        on_serving=lambda port: print(f"{READY_PREFIX}{config.host}:{port}", flush=True),
    )
    return 0


SERVE_EXAMPLES = """examples:
  thoughtbank serve --index INDEX_DIR --port 50051
  thoughtbank serve --index INDEX_DIR --host 0.0.0.0 --port 50051 --metrics-port 9100
  thoughtbank serve --index INDEX_DIR --tls-cert cert.pem --tls-key key.pem --auth-token-file token
  thoughtbank serve --index-root INDEX_ROOT --auth-tokens-file tokens.toml
  thoughtbank serve --config serve.toml --log-format text"""


def add_commands(commands: Commands) -> None:
    serve_parser = commands.add_parser(
        "serve",
        help="serve an index over gRPC",
        description="Serve an index over gRPC. Options come from flags, then "
        "THOUGHTBANK_<OPTION> environment variables, then the --config TOML file, then defaults.",
        epilog=SERVE_EXAMPLES,
    )
    add_config_flags(serve_parser)
    serve_parser.set_defaults(func=cmd_serve)
