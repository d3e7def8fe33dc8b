"""Client SDK for a running thoughtbank server: typed results, mapped errors, closable channels."""

from __future__ import annotations

from types import TracebackType

import grpc

from thoughtbank.protos import convert, pb2, pb2_grpc
from thoughtbank.retriever.errors import error_from_rpc
from thoughtbank.retriever.types import (
    DEFAULT_K,
    AugmentedPrompt,
    IndexInfo,
    RetrievalQuery,
    RetrievalResult,
)
from thoughtbank.templates import ThoughtTemplate

DEFAULT_TIMEOUT = 30.0


class ThoughtbankClient:
    """Synchronous client; use as a context manager or call ``close()``.

    >>> with ThoughtbankClient("127.0.0.1:50051") as client:  # doctest: +SKIP
    ...     for hit in client.retrieve("What is 3 + 4?").hits:
    ...         print(hit.score, hit.template.text)
    """

    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        self._channel = grpc.insecure_channel(address)
        self._stub = pb2_grpc.ThoughtTemplateServiceStub(self._channel)

    def _invoke(self, method, request, timeout: float | None):
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from exc

    def retrieve(
        self, query: str | RetrievalQuery, k: int = DEFAULT_K, task: str = "",
        timeout: float | None = None,
    ) -> RetrievalResult:
        request = query if isinstance(query, RetrievalQuery) else RetrievalQuery(query, k, task)
        response = self._invoke(self._stub.Retrieve, convert.query_to_pb(request), timeout)
        return convert.result_from_pb(response)

    def retrieve_batch(
        self, queries: list[RetrievalQuery], timeout: float | None = None
    ) -> list[RetrievalResult]:
        request = pb2.RetrieveBatchRequest(requests=[convert.query_to_pb(q) for q in queries])
        response = self._invoke(self._stub.RetrieveBatch, request, timeout)
        return [convert.result_from_pb(r) for r in response.responses]

    def augment(
        self, query: str | RetrievalQuery, k: int = DEFAULT_K, task: str = "",
        max_template_tokens: int | None = None, timeout: float | None = None,
    ) -> AugmentedPrompt:
        request = query if isinstance(query, RetrievalQuery) else RetrievalQuery(query, k, task)
        message = convert.augment_request_to_pb(request, max_template_tokens)
        return convert.augmented_from_pb(self._invoke(self._stub.AugmentPrompt, message, timeout))

    def get_template(self, template_id: str, timeout: float | None = None) -> ThoughtTemplate:
        response = self._invoke(
            self._stub.GetTemplate, pb2.GetTemplateRequest(id=template_id), timeout
        )
        return convert.template_from_pb(response.template)

    def index_info(self, timeout: float | None = None) -> IndexInfo:
        response = self._invoke(self._stub.GetIndexInfo, pb2.GetIndexInfoRequest(), timeout)
        return convert.info_from_pb(response)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> ThoughtbankClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
