"""Query-time stage: retrieval semantics, prompt augmentation and the client SDK.

The LangChain integration is in ``thoughtbank.retriever.langchain`` (imported on demand); the
prompt names load langchain-core on first use, so the command line starts fast without them.
"""

import importlib
from typing import TYPE_CHECKING

from thoughtbank.retriever.aio_client import AsyncThoughtbankClient
from thoughtbank.retriever.base_client import ConnectionSettings, RetryPolicy
from thoughtbank.retriever.client import ThoughtbankClient
from thoughtbank.retriever.errors import (
    AuthenticationError,
    DeadlineExceededError,
    IndexUnavailableError,
    InvalidRequestError,
    MessageTooLargeError,
    NamespaceNotFoundError,
    PermissionDeniedError,
    ServerOverloadedError,
    TemplateNotFoundError,
    ThoughtbankError,
)
from thoughtbank.retriever.types import (
    AugmentedPrompt,
    IndexInfo,
    NamespaceInfo,
    RetrievalQuery,
    RetrievalResult,
    ScoredTemplate,
)
from thoughtbank.schema import OutcomeRecord

if TYPE_CHECKING:
    from thoughtbank.retriever.prompt import DEFAULT_PROMPT, build_augmented_prompt

# Names whose module imports langchain-core (half a second): loaded when first asked for.
_LAZY_NAMES = {
    "DEFAULT_PROMPT": "thoughtbank.retriever.prompt",
    "build_augmented_prompt": "thoughtbank.retriever.prompt",
}


def __getattr__(name: str) -> object:
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_PROMPT",
    "AsyncThoughtbankClient",
    "AugmentedPrompt",
    "AuthenticationError",
    "ConnectionSettings",
    "DeadlineExceededError",
    "IndexInfo",
    "IndexUnavailableError",
    "InvalidRequestError",
    "MessageTooLargeError",
    "NamespaceInfo",
    "NamespaceNotFoundError",
    "OutcomeRecord",
    "PermissionDeniedError",
    "RetrievalQuery",
    "RetrievalResult",
    "RetryPolicy",
    "ScoredTemplate",
    "ServerOverloadedError",
    "TemplateNotFoundError",
    "ThoughtbankClient",
    "ThoughtbankError",
    "build_augmented_prompt",
]
