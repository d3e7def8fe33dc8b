"""Fake chat models for ``eval e2e``, loaded as ``python:quality_fakes:FACTORY``.

They answer every question with 42 or 7 depending on whether the prompt carries thought
templates, so a test knows exactly how much templates "help" or "hurt".
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

RIGHT, WRONG = "The answer is \\boxed{42}.", "The answer is \\boxed{7}."


class TemplateSensitiveModel(BaseChatModel):
    """Replies ``with_templates`` when the prompt shows thought templates, else ``without``."""

    with_templates: str
    without: str

    @property
    def _llm_type(self) -> str:
        return "template-sensitive-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        shown = "Thought template" in str(messages[-1].content)
        reply = self.with_templates if shown else self.without
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def helped_model() -> BaseChatModel:
    return TemplateSensitiveModel(with_templates=RIGHT, without=WRONG)


def hurt_model() -> BaseChatModel:
    return TemplateSensitiveModel(with_templates=WRONG, without=RIGHT)
