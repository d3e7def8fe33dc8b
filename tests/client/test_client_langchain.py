"""ThoughtTemplateRetriever and augment_with_templates inside real LCEL chains."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.langchain import (
    NO_TEMPLATES,
    ThoughtTemplateRetriever,
    augment_with_templates,
)

QUESTIONS = {
    "gsm8k": "Ana has 12 pens and gives away 5. How many pens does Ana have left?",
    "commonsense_qa": "Where would you keep fresh fish cold before cooking it?",
    "mbpp": "Write a Python function that returns the largest number in a list.",
}
PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "human",
            "Solved questions like this one, with how they were solved:\n{thought_templates}\n\n"
            "Question: {question}",
        )
    ]
)
METADATA_KEYS = {"id", "task", "score", "source_query", "source_models", "index_version"}


@pytest.fixture(scope="module")
def retriever(demo_server) -> Iterator[ThoughtTemplateRetriever]:
    retriever = ThoughtTemplateRetriever(address=demo_server.address, k=2)
    yield retriever
    retriever.close()


def test_documents_carry_template_text_and_provenance(retriever) -> None:
    documents = retriever.invoke(QUESTIONS["gsm8k"])
    assert len(documents) == 2
    assert all(doc.metadata.keys() == METADATA_KEYS for doc in documents)
    assert documents[0].metadata["task"] == "gsm8k"
    assert documents[0].metadata["score"] >= documents[1].metadata["score"]
    assert documents[0].page_content.startswith("Task:")
    assert documents[0].id == documents[0].metadata["id"]


def test_sync_batch_and_async_paths_agree(retriever) -> None:
    questions = list(QUESTIONS.values())
    batched = retriever.batch(questions)
    awaited = asyncio.run(retriever.abatch(questions))
    assert [[d.id for d in docs] for docs in batched] == [[d.id for d in docs] for docs in awaited]
    assert [docs[0].metadata["task"] for docs in batched] == list(QUESTIONS)


def test_settings_are_applied(demo_server) -> None:
    strict = ThoughtTemplateRetriever(address=demo_server.address, k=4, task="mbpp")
    assert {d.metadata["task"] for d in strict.invoke(QUESTIONS["mbpp"])} == {"mbpp"}
    picky = ThoughtTemplateRetriever(address=demo_server.address, k=4, min_score=0.99)
    assert asyncio.run(picky.ainvoke(QUESTIONS["gsm8k"])) == []
    for made in (strict, picky):
        made.close()


def test_model_receives_the_templates_in_its_prompt(retriever) -> None:
    chain = augment_with_templates(PROMPT | ParrotFakeChatModel(), retriever)
    reply = chain.invoke({"question": QUESTIONS["gsm8k"]})
    top = retriever.invoke(QUESTIONS["gsm8k"])[0]
    assert "### Similar question 1" in reply.content
    assert top.page_content.strip() in reply.content
    assert reply.content.endswith(f"Question: {QUESTIONS['gsm8k']}")


def test_chain_batch_and_ainvoke_fill_each_input(retriever) -> None:
    chain = augment_with_templates(
        PROMPT | ParrotFakeChatModel() | RunnableLambda(lambda message: message.content),
        retriever,
    )
    inputs = [{"question": q} for q in QUESTIONS.values()]
    prompts = chain.batch(inputs)
    assert prompts == [asyncio.run(chain.ainvoke(one)) for one in inputs]
    for prompt, task in zip(prompts, QUESTIONS, strict=True):
        assert retriever.invoke(QUESTIONS[task])[0].page_content.strip() in prompt


def test_local_client_serves_the_async_path_in_a_thread(demo_index: Path) -> None:
    with ThoughtbankClient.local(demo_index) as client:
        retriever = ThoughtTemplateRetriever(client=client, k=1, min_score=0.99)
        chain = augment_with_templates(PROMPT | ParrotFakeChatModel(), retriever, query_key="q")
        reply = asyncio.run(chain.ainvoke({"q": QUESTIONS["mbpp"], "question": "shown"}))
    assert NO_TEMPLATES in reply.content


def test_a_retriever_needs_somewhere_to_retrieve_from() -> None:
    with pytest.raises(ValueError, match="give an address, a client or an async_client"):
        ThoughtTemplateRetriever(k=3)


def test_invoke_keywords_override_settings_for_one_call(retriever) -> None:
    assert len(retriever.invoke(QUESTIONS["gsm8k"], k=1)) == 1
    only_mbpp = retriever.invoke(QUESTIONS["gsm8k"], k=4, task="mbpp")
    assert {d.metadata["task"] for d in only_mbpp} == {"mbpp"}
    assert asyncio.run(retriever.ainvoke(QUESTIONS["gsm8k"], min_score=0.99)) == []
    top = retriever.invoke(QUESTIONS["gsm8k"], k=1)[0]
    assert top.id not in {d.id for d in retriever.invoke(QUESTIONS["gsm8k"], exclude_ids=[top.id])}
    assert len(retriever.invoke(QUESTIONS["gsm8k"])) == 2


def test_an_unknown_invoke_keyword_is_named(retriever) -> None:
    with pytest.raises(TypeError, match=r"unknown retrieval option\(s\) top_k; known: diversity"):
        retriever.invoke(QUESTIONS["gsm8k"], top_k=1)
