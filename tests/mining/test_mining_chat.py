"""The chat distiller with langchain-core's fake chat models: parsing, retries, timeouts."""

from __future__ import annotations

import json
import sys
from itertools import cycle

import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage
from langchain_core.rate_limiters import InMemoryRateLimiter
from mining_fakes import (
    TEMPLATE_REPLY,
    FlakyChatModel,
    PromptHashChatModel,
    SleepingChatModel,
    fake_model,
)

from thoughtbank.templates.chat import (
    CallPolicy,
    ChatDistiller,
    build_messages,
    load_chat_model,
    parse_template_reply,
)
from thoughtbank.templates.distill import DistillRequest, LLMUsage
from thoughtbank.templates.leakage import Leak
from thoughtbank.templates.schema import LogRecord, TemplateFields

FAST = CallPolicy(timeout_s=5, retries=3, backoff_s=0.001, max_backoff_s=0.01)
GOOD = LogRecord("gsm8k", "Tom has 3 apples and buys 4. How many?", "big", "3 + 4 = 7\n#### 7", 1.0)
BAD = LogRecord("gsm8k", GOOD.query, "small", "3 * 4 = 12\n#### 12", 0.0)
REQUEST = DistillRequest("gsm8k", GOOD.query, (GOOD,))
EXPECTED = TemplateFields(
    "Solve a word problem about quantities.",
    ("List the given quantities.", "Combine them with the right operation."),
    "End with '#### <number>'.",
)


def test_parses_json_in_prose_and_code_fence() -> None:
    reply = f"Here is the template:\n```json\n{TEMPLATE_REPLY}\n```\nHope it helps."
    parsed = parse_template_reply(reply)
    assert parsed.fields == EXPECTED
    assert parsed.pitfalls == "Do not forget a quantity."


def test_parses_loose_json_steps_as_numbered_text_and_caps_them() -> None:
    reply = (
        '{"Summary": "Count things.", "steps": "1. Read.\\n2) Add.\\n- Check.\\n4. More.",'
        ' "Answer Format": "A number."}'
    )
    parsed = parse_template_reply(reply)
    assert parsed.fields == TemplateFields(
        "Count things.", ("Read.", "Add.", "Check."), "A number."
    )
    assert parsed.pitfalls == ""


def test_parses_the_rendered_layout() -> None:
    reply = EXPECTED.render() + "\nPitfalls: Watch units."
    parsed = parse_template_reply(reply)
    assert parsed.fields == EXPECTED
    assert parsed.pitfalls == "Watch units."


@pytest.mark.parametrize(
    "reply",
    [
        # How small models nest and wrap their JSON.
        json.dumps([{"task_summary": "Count things.", "steps": ["Add."], "format": "A number."}]),
        json.dumps(
            {
                "task_summary": {"text": "Count things."},
                "reasoning_steps": [{"step": 1, "text": "Add."}],
                "answer_format": ["A number."],
            }
        ),
        json.dumps({"summary": "Count things.", "steps": {"1": "Add."}, "format": "A number."}),
    ],
)
def test_parses_json_nested_in_lists_and_objects(reply: str) -> None:
    parsed = parse_template_reply(reply)
    assert parsed.fields == TemplateFields("Count things.", ("Add.",), "A number.")


@pytest.mark.parametrize(
    "reply",
    [
        "I cannot help with that.",
        "A: 3",  # SmolLM2-135M answering the query instead
        '{"task_summary": "x", "reasoning_steps": 3, "answer_format": "y"}',
        '{"task_summary": 42, "reasoning_steps": ["a"], "answer_format": "y"}',
        "[]",
        '{"task_summary": "x", "reasoning_steps": [], "answer_format": "y"}',
        '{"task_summary": "x", "reasoning_steps": ["a"]}',
    ],
)
def test_unusable_replies_raise_parser_errors(reply: str) -> None:
    with pytest.raises(OutputParserException):
        parse_template_reply(reply)


def test_prompt_has_responses_failures_and_leak_feedback() -> None:
    leak = Leak("ground truth", "7", "7")
    system, user = build_messages(DistillRequest("gsm8k", GOOD.query, (GOOD,), (BAD,), (leak,)))
    assert "reasoning_steps" in system.content
    assert "Best responses:\n[1] (big, performance 1)\n3 + 4 = 7" in user.content
    assert "Failed responses (for pitfalls):\n[1] (small, performance 0)" in user.content
    assert "Your previous template leaked ground truth: '7'." in user.content


def test_distils_through_langchain_fake_model() -> None:
    distiller = ChatDistiller(fake_model(TEMPLATE_REPLY), "fake", FAST)
    assert distiller.distill(REQUEST).fields == EXPECTED
    assert distiller.name == "chat:fake"
    assert distiller.usage() == LLMUsage(calls=1, input_tokens=None, output_tokens=None)


def test_counts_tokens_where_the_model_reports_them() -> None:
    distiller = ChatDistiller(PromptHashChatModel(), policy=FAST)
    distiller.distill(REQUEST)
    distiller.distill(REQUEST)
    usage = distiller.usage()
    assert usage.calls == 2
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert distiller.name == "chat:PromptHashChatModel"


def test_retries_transient_errors_with_backoff() -> None:
    model = FlakyChatModel(messages=cycle([AIMessage(TEMPLATE_REPLY)]), failures=2)
    distiller = ChatDistiller(model, policy=FAST)
    assert distiller.distill(REQUEST).fields == EXPECTED
    assert distiller.usage().calls == 3


def test_gives_up_after_the_retries() -> None:
    model = FlakyChatModel(
        messages=cycle([AIMessage(TEMPLATE_REPLY)]), failures=10, error=TimeoutError
    )
    distiller = ChatDistiller(model, policy=CallPolicy(retries=2, backoff_s=0.001))
    with pytest.raises(TimeoutError, match="transient failure 3"):
        distiller.distill(REQUEST)
    assert distiller.usage().calls == 3


def test_does_not_retry_other_errors() -> None:
    model = FlakyChatModel(
        messages=cycle([AIMessage(TEMPLATE_REPLY)]), failures=1, error=PermissionError
    )
    distiller = ChatDistiller(model, policy=FAST)
    with pytest.raises(PermissionError):
        distiller.distill(REQUEST)
    assert distiller.usage().calls == 1


def test_retries_an_unparseable_reply() -> None:
    distiller = ChatDistiller(fake_model("no template here", TEMPLATE_REPLY), policy=FAST)
    assert distiller.distill(REQUEST).fields == EXPECTED
    assert distiller.usage().calls == 2


def test_retries_a_reply_with_steps_of_the_wrong_type() -> None:
    messy = '{"task_summary": "x", "reasoning_steps": 3, "answer_format": "y"}'
    distiller = ChatDistiller(fake_model(messy, TEMPLATE_REPLY), policy=FAST)
    assert distiller.distill(REQUEST).fields == EXPECTED
    assert distiller.usage().calls == 2


def test_a_call_over_the_timeout_fails_and_is_retried() -> None:
    model = SleepingChatModel(messages=cycle([AIMessage(TEMPLATE_REPLY)]), delay_s=0.5)
    policy = CallPolicy(timeout_s=0.05, retries=1, backoff_s=0.001)
    distiller = ChatDistiller(model, policy=policy)
    with pytest.raises(TimeoutError, match=r"LLM call took over 0\.05 s"):
        distiller.distill(REQUEST)
    assert distiller.usage().calls == 2


def test_rate_limit_gates_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    acquired = []
    monkeypatch.setattr(
        InMemoryRateLimiter,
        "acquire",
        lambda self, blocking=True: acquired.append(blocking) or True,
    )
    distiller = ChatDistiller(
        fake_model("bad", TEMPLATE_REPLY), policy=CallPolicy(backoff_s=0.001, requests_per_second=5)
    )
    distiller.distill(REQUEST)
    assert len(acquired) == 2


def test_load_python_entry_point() -> None:
    model = load_chat_model("python:mining_fakes:prompt_hash_model")
    assert isinstance(model, PromptHashChatModel)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("python:mining_fakes:not_a_model", "returned str, not a BaseChatModel"),
        ("python:mining_fakes:absent", "mining_fakes has no callable absent"),
        ("python:mining_fakes", "expected python:package.module:factory"),
        ("anthropic:claude", "--llm must be openai:MODEL or python:package.module:factory"),
        ("openai:", "--llm must be openai:MODEL"),
    ],
)
def test_bad_llm_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_chat_model(spec)


def test_openai_without_the_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain_openai", None)
    with pytest.raises(RuntimeError, match=r"pip install '\.\[openai\]'"):
        load_chat_model("openai:gpt-4o-mini")
