"""LangChain's own standard retriever tests (langchain-tests) against a real demo server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from thoughtbank.retriever.langchain import ThoughtTemplateRetriever

QUESTION = "Ana has 12 pens and gives away 5. How many pens does Ana have left?"


class TestThoughtTemplateRetrieverStandard(RetrieversIntegrationTests):
    address = ""

    @pytest.fixture(autouse=True)
    def _serve(self, demo_server) -> None:
        type(self).address = demo_server.address

    @pytest.fixture
    def retriever(self) -> Iterator[ThoughtTemplateRetriever]:
        made = self.retriever_constructor(**self.retriever_constructor_params)
        yield made
        made.close()

    @property
    def retriever_constructor(self) -> type[ThoughtTemplateRetriever]:
        return ThoughtTemplateRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"address": self.address}

    @property
    def retriever_query_example(self) -> str:
        return QUESTION
