"""A distiller described by value, so that every process of a cluster can build its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_core.rate_limiters import BaseRateLimiter

from thoughtbank.templates.chat import (
    CallPolicy,
    ChatDistiller,
    chat_distiller_name,
    load_chat_model,
)
from thoughtbank.templates.distill import Distiller, ExtractiveDistiller


@dataclass(frozen=True)
class DistillerSpec:
    """``llm=None`` is the extractive distiller; otherwise an ``--llm`` spec called under
    ``policy``. ``name`` and ``version`` are those of the distiller ``build`` returns, known
    without building it (a ``python:`` factory may load a model)."""

    llm: str | None = None
    policy: CallPolicy = field(default_factory=CallPolicy)

    @property
    def name(self) -> str:
        return chat_distiller_name(self.llm) if self.llm else ExtractiveDistiller.name

    @property
    def version(self) -> str:
        return ChatDistiller.version if self.llm else ExtractiveDistiller.version

    def build(self, rate_limiter: BaseRateLimiter | None = None) -> Distiller:
        if self.llm is None:
            return ExtractiveDistiller()
        model = load_chat_model(self.llm, self.policy.timeout_s)
        return ChatDistiller(model, self.llm, self.policy, rate_limiter)
