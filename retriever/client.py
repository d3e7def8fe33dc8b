"""Client SDK for thoughtbank: typed results, mapped errors, retries, auth, TLS, closable channels.

``ThoughtbankClient`` talks to a server over gRPC, or, built with ``ThoughtbankClient.local``, runs
the same retrieval in-process. Both carry the same ``Call``s (``retriever.base_client``), so every
method has one meaning whichever way it is served, and the asyncio client in
``thoughtbank.retriever.aio_client`` makes the same calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

import grpc

from thoughtbank.echo import echo
from thoughtbank.extras import require_engine
from thoughtbank.protos import pb2_grpc
from thoughtbank.retriever.base_client import (
    BaseClient,
    Call,
    ConnectionSettings,
    LocalRetrieval,
    list_namespaces_call,
)
from thoughtbank.retriever.errors import (
    NAMESPACE_NOT_FOUND_PREFIX,
    NamespaceNotFoundError,
    error_from_rpc,
)
from thoughtbank.retriever.types import (
    DEFAULT_K,
    DEFAULT_NAMESPACE,
    AugmentedPrompt,
    IndexInfo,
    NamespaceInfo,
    RetrievalQuery,
    RetrievalResult,
)
from thoughtbank.schema import OutcomeRecord, ThoughtTemplate

T = TypeVar("T")


class Transport(Protocol):
    """What carries a client's calls: a gRPC channel or an in-process engine."""

    address: str

    def call(self, call: Call[T], timeout: float | None) -> T: ...

    def close(self) -> None: ...


class GrpcTransport:
    """Calls a server over one gRPC channel."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.address = settings.address
        self._channel: grpc.Channel = settings.open_channel(grpc)
        self._stub = pb2_grpc.ThoughtTemplateServiceStub(self._channel)

    def call(self, call: Call[T], timeout: float | None) -> T:
        method = getattr(self._stub, call.method)
        try:
            reply = method(
                call.request,
                timeout=self.settings.deadline(timeout),
                metadata=self.settings.metadata(),
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc
        return call.parse(reply)

    def close(self) -> None:
        self._channel.close()


class LocalTransport:
    """Serves calls from an index loaded in this process; timeouts do not apply."""

    def __init__(self, index_dir: Path) -> None:
        # The engine (FAISS, the embedding model) loads here only: apps that talk to a server
        # never need it, and a light install lacks it.
        require_engine("an in-process index (--index, .local)")
        from thoughtbank.retriever.serving.engine import RetrievalEngine

        self.engine: LocalRetrieval = RetrievalEngine.open(index_dir)
        self.address = f"local:{index_dir}"

    def call(self, call: Call[T], timeout: float | None) -> T:
        if call.namespace not in ("", DEFAULT_NAMESPACE):
            raise NamespaceNotFoundError(
                f"{NAMESPACE_NOT_FOUND_PREFIX}{echo(call.namespace)}: a local client serves one "
                f"index, namespace {DEFAULT_NAMESPACE!r}"
            )
        return call.run_local(self.engine)

    def close(self) -> None:
        """Nothing to release: the index lives as long as the client object."""


class ThoughtbankClient(BaseClient[Transport]):
    """Synchronous client; use it as a context manager or call ``close()``.

    >>> with ThoughtbankClient("127.0.0.1:50051") as client:  # doctest: +SKIP
    ...     for hit in client.retrieve("What is 3 + 4?").hits:
    ...         print(hit.score, hit.template.text)
    """

    def _connect(self, settings: ConnectionSettings) -> Transport:
        return GrpcTransport(settings)

    @classmethod
    def local(cls, index_dir: Path | str, *, namespace: str = "") -> ThoughtbankClient:
        """The same API over an index loaded in this process, for notebooks and batch jobs; it
        is namespace ``default``."""
        return cls(LocalTransport(Path(index_dir)), namespace=namespace)

    def retrieve(
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
        return self._transport.call(
            self._retrieve(query, k, task, min_score, diversity, namespace), timeout
        )

    def retrieve_batch(
        self,
        queries: Sequence[str | RetrievalQuery],
        k: int = DEFAULT_K,
        task: str = "",
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> list[RetrievalResult]:
        """One result per query, in order, from a single call (embedded as one batch)."""
        return self._transport.call(self._retrieve_batch(queries, k, task, namespace), timeout)

    def augment(
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
        return self._transport.call(call, timeout)

    def get_template(
        self, template_id: str, *, namespace: str | None = None, timeout: float | None = None
    ) -> ThoughtTemplate:
        return self._transport.call(self._get_template(template_id, namespace), timeout)

    def index_info(
        self, *, namespace: str | None = None, timeout: float | None = None
    ) -> IndexInfo:
        return self._transport.call(self._index_info(namespace), timeout)

    def record_outcome(
        self,
        outcome: OutcomeRecord,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Report how an answer scored with ``outcome.template_ids`` in its prompt, stored
        durably; False when this ``outcome_id`` was recorded before (a retry is safe)."""
        return self._transport.call(self._record_outcome(outcome, namespace), timeout)

    def record_outcomes(
        self,
        outcomes: Sequence[OutcomeRecord],
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> list[bool]:
        """``record_outcome`` for many outcomes in one call, e.g. replayed evaluation results."""
        return self._transport.call(self._record_outcomes(outcomes, namespace), timeout)

    def list_namespaces(self, *, timeout: float | None = None) -> list[NamespaceInfo]:
        """The namespaces the server holds that this client's token may read, by name."""
        return self._transport.call(list_namespaces_call(), timeout)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> ThoughtbankClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
