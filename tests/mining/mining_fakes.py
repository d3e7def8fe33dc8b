"""Fake chat models for the LLM distiller's tests, built on langchain-core's own fakes.

``python:mining_fakes:FACTORY`` loads them through the CLI's entry-point path (the test puts
this folder on ``PYTHONPATH``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from itertools import cycle
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

TEMPLATE_REPLY = json.dumps(
    {
        "task_summary": "Solve a word problem about quantities.",
        "reasoning_steps": ["List the given quantities.", "Combine them with the right operation."],
        "answer_format": "End with '#### <number>'.",
        "pitfalls": "Do not forget a quantity.",
    }
)


def fake_model(*replies: str) -> GenericFakeChatModel:
    """langchain-core's fake: returns ``replies`` in turn, forever."""
    return GenericFakeChatModel(messages=cycle([AIMessage(r) for r in replies]))


class SleepingChatModel(GenericFakeChatModel):
    """The fake with a fixed latency per call, like a remote model."""

    delay_s: float = 0.2

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.delay_s)
        return super()._generate(messages, stop, run_manager, **kwargs)


class FlakyChatModel(GenericFakeChatModel):
    """Raises ``error`` on the first ``failures`` calls, then answers like the fake."""

    failures: int = 2
    error: type[Exception] = ConnectionError
    calls: int = 0

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"transient failure {self.calls}")
        return super()._generate(messages, stop, run_manager, **kwargs)


class PromptHashChatModel(BaseChatModel):
    """Answers each prompt with a template derived from the prompt's hash: deterministic per
    query whatever the order of calls, so interrupted and uninterrupted runs can be compared.
    Reports token usage like a real provider."""

    delay_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "prompt-hash-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.delay_s)
        prompt = "\n".join(str(m.content) for m in messages)
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:8]
        reply = json.dumps(
            {
                "task_summary": f"Solve problem kind {digest}.",
                "reasoning_steps": [f"Step one for {digest}.", "Check the result."],
                "answer_format": "State the answer on the last line.",
            }
        )
        usage = {
            "input_tokens": len(prompt.split()),
            "output_tokens": len(reply.split()),
            "total_tokens": len(prompt.split()) + len(reply.split()),
        }
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(reply, usage_metadata=usage))]
        )


def slow_prompt_hash_model() -> PromptHashChatModel:
    """Entry point for ``--llm python:mining_fakes:slow_prompt_hash_model``."""
    return PromptHashChatModel(delay_s=0.05)


class PidRecordingChatModel(PromptHashChatModel):
    """The prompt-hash fake that leaves a file named by its process id in
    ``$THOUGHTBANK_TEST_PID_DIR`` on each call, so a test can find and kill a Ray worker."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        Path(os.environ["THOUGHTBANK_TEST_PID_DIR"], str(os.getpid())).touch()
        return super()._generate(messages, stop, run_manager, **kwargs)


def pid_recording_model() -> PidRecordingChatModel:
    """Entry point for ``--llm python:mining_fakes:pid_recording_model``."""
    return PidRecordingChatModel(delay_s=0.05)


def prompt_hash_model() -> PromptHashChatModel:
    """Entry point for ``--llm python:mining_fakes:prompt_hash_model``."""
    return PromptHashChatModel()


def not_a_model() -> str:
    return "not a chat model"
