"""LangChain integration: a retriever of thought templates and a Runnable that puts them in prompts.

``ThoughtTemplateRetriever`` is a ``BaseRetriever`` (so it works in any LCEL chain, with callbacks,
``batch`` and ``ainvoke``) whose sync path uses ``ThoughtbankClient`` and whose async path uses
``AsyncThoughtbankClient``, never a thread blocked on the sync client. ``augment_with_templates``
adds a ``thought_templates`` variable to a chain's input for any prompt template to place.
"""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from pydantic import Field, PrivateAttr, model_validator

from thoughtbank.retriever.aio_client import AsyncThoughtbankClient
from thoughtbank.retriever.client import ThoughtbankClient
from thoughtbank.retriever.prompt import format_template_block
from thoughtbank.retriever.types import DEFAULT_K, RetrievalQuery, RetrievalResult, ScoredTemplate
from thoughtbank.schema import OutcomeRecord

NO_TEMPLATES = "(no similar solved questions were found)"
# Keywords ``invoke``/``ainvoke`` take per call: every RetrievalQuery field but the query itself.
RETRIEVAL_OPTIONS = frozenset(field.name for field in dataclasses.fields(RetrievalQuery)) - {
    "query"
}
# LangChain leaves its own ``verbose`` among the keywords it hands on to the retriever.
LANGCHAIN_KEYWORDS = frozenset({"verbose"})


def hit_to_document(hit: ScoredTemplate) -> Document:
    """page_content is the template text; metadata says where it came from and how close it is."""
    template = hit.template
    return Document(
        id=template.id,
        page_content=template.text,
        metadata={
            "id": template.id,
            "task": template.task,
            "score": hit.score,
            "source_query": template.source_query,
            "source_models": list(template.source_models),
            "index_version": hit.index_version,
        },
    )


def outcome_of_documents(
    documents: Sequence[Document],
    outcome_id: str,
    score: float,
    *,
    query: str = "",
    baseline_score: float | None = None,
    task: str = "",
    model: str = "",
) -> OutcomeRecord:
    """The outcome of an answer whose prompt held ``documents`` (this module's, which carry
    the template ids and index version in their metadata)."""
    return OutcomeRecord(
        outcome_id=outcome_id,
        template_ids=tuple(str(d.metadata["id"]) for d in documents),
        score=score,
        query=query,
        baseline_score=baseline_score,
        task=task,
        index_version=str(documents[0].metadata.get("index_version", "")) if documents else "",
        model=model,
    )


def render_templates(hits: Sequence[ScoredTemplate]) -> str:
    """The hits as numbered blocks, formatted as in thoughtbank's own augmented prompt."""
    if not hits:
        return NO_TEMPLATES
    return "\n\n".join(format_template_block(i, hit) for i, hit in enumerate(hits, 1))


class ThoughtTemplateRetriever(BaseRetriever):
    """Top-``k`` thought templates for a query, as LangChain ``Document``s.

    Give ``address`` (clients are created on demand with ``client_options``, e.g. ``token`` or
    ``root_certificates``) or ready clients: ``client`` for the sync path, ``async_client`` for
    the async one. ``namespace`` is the one to read (None: the clients' own default). With only
    a sync client (such as ``ThoughtbankClient.local``), the async path runs it in a worker
    thread. grpc.aio channels belong to one event loop, so clients made from ``address`` are
    kept per loop.
    """

    address: str | None = None
    client: ThoughtbankClient | None = None
    async_client: AsyncThoughtbankClient | None = None
    client_options: dict[str, Any] = Field(default_factory=dict)
    k: int = DEFAULT_K
    task: str = ""
    min_score: float | None = None
    diversity: float = 0.0
    namespace: str | None = None

    _async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncThoughtbankClient] = (
        PrivateAttr(default_factory=weakref.WeakKeyDictionary)
    )

    @model_validator(mode="after")
    def _needs_a_server(self) -> ThoughtTemplateRetriever:
        if self.address is None and self.client is None and self.async_client is None:
            raise ValueError("give an address, a client or an async_client")
        return self

    def request(self, query: str, **options: Any) -> RetrievalQuery:
        """The request for ``query``: this retriever's settings, then per-call ``options``.

        ``options`` are RetrievalQuery fields (``k``, ``task``, ``min_score``, ``diversity``,
        ``exclude_ids``...), as given to ``invoke(query, k=1)``.
        """
        unknown = sorted(options.keys() - RETRIEVAL_OPTIONS - LANGCHAIN_KEYWORDS)
        if unknown:
            allowed = ", ".join(sorted(RETRIEVAL_OPTIONS))
            raise TypeError(f"unknown retrieval option(s) {', '.join(unknown)}; known: {allowed}")
        settings = RetrievalQuery(
            query, k=self.k, task=self.task, min_score=self.min_score, diversity=self.diversity
        )
        chosen = {name: value for name, value in options.items() if name in RETRIEVAL_OPTIONS}
        return dataclasses.replace(settings, **chosen)

    def _sync_client(self) -> ThoughtbankClient:
        if self.client is None:
            if self.address is None:
                raise ValueError("this retriever has only an async client: use ainvoke")
            self.client = ThoughtbankClient(self.address, **self.client_options)
        return self.client

    def _loop_client(self) -> AsyncThoughtbankClient | None:
        if self.async_client is not None or self.address is None:
            return self.async_client
        loop = asyncio.get_running_loop()
        if loop not in self._async_clients:
            self._async_clients[loop] = AsyncThoughtbankClient(self.address, **self.client_options)
        return self._async_clients[loop]

    def search(self, query: str, **options: Any) -> RetrievalResult:
        """The full typed result for ``query`` with this retriever's settings (sync)."""
        return self._sync_client().retrieve(
            self.request(query, **options), namespace=self.namespace
        )

    async def asearch(self, query: str, **options: Any) -> RetrievalResult:
        """The full typed result for ``query`` with this retriever's settings (async)."""
        client = self._loop_client()
        if client is None:
            return await asyncio.to_thread(self.search, query, **options)
        return await client.retrieve(self.request(query, **options), namespace=self.namespace)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **options: Any
    ) -> list[Document]:
        return [hit_to_document(hit) for hit in self.search(query, **options).hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **options: Any
    ) -> list[Document]:
        return [hit_to_document(hit) for hit in (await self.asearch(query, **options)).hits]

    def record_outcome(
        self, documents: Sequence[Document], outcome_id: str, score: float, **fields: Any
    ) -> bool:
        """Report how the answer built from ``documents`` scored (``fields``: the other
        ``outcome_of_documents`` keywords); False when ``outcome_id`` was recorded before."""
        outcome = outcome_of_documents(documents, outcome_id, score, **fields)
        return self._sync_client().record_outcome(outcome, namespace=self.namespace)

    async def arecord_outcome(
        self, documents: Sequence[Document], outcome_id: str, score: float, **fields: Any
    ) -> bool:
        """``record_outcome`` on the async path."""
        outcome = outcome_of_documents(documents, outcome_id, score, **fields)
        client = self._loop_client()
        if client is None:
            return await asyncio.to_thread(
                self._sync_client().record_outcome, outcome, namespace=self.namespace
            )
        return await client.record_outcome(outcome, namespace=self.namespace)

    def close(self) -> None:
        """Close the sync client; async clients made from ``address`` go with their loop."""
        if self.client is not None:
            self.client.close()


def thought_templates_runnable(
    retriever: ThoughtTemplateRetriever, query_key: str = "question"
) -> Runnable[dict[str, Any], str]:
    """``{query_key: ...}`` -> the rendered templates for that query, sync and async."""

    def render(inputs: dict[str, Any]) -> str:
        return render_templates(retriever.search(inputs[query_key]).hits)

    async def arender(inputs: dict[str, Any]) -> str:
        return render_templates((await retriever.asearch(inputs[query_key])).hits)

    return RunnableLambda(render, afunc=arender, name="thought_templates")


def augment_with_templates(
    chain: Runnable[dict[str, Any], Any],
    retriever: ThoughtTemplateRetriever,
    *,
    query_key: str = "question",
) -> Runnable[dict[str, Any], Any]:
    """``chain`` whose input dict also gets ``thought_templates`` for the query in ``query_key``.

    Place ``{thought_templates}`` anywhere in the chain's prompt template::

        chain = augment_with_templates(prompt | model, ThoughtTemplateRetriever(address=...))
        chain.invoke({"question": "How many apples are left?"})
    """
    templates = thought_templates_runnable(retriever, query_key)
    return RunnablePassthrough.assign(thought_templates=templates) | chain
