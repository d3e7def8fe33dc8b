"""Query-time stage: retrieval semantics, prompt augmentation and the client SDK.

The LangChain integration is in ``thoughtbank.retriever.langchain`` (imported on demand).
"""

from thoughtbank.retriever.aio_client import AsyncThoughtbankClient
from thoughtbank.retriever.base_client import ConnectionSettings, RetryPolicy
from thoughtbank.retriever.client import ThoughtbankClient
from thoughtbank.retriever.errors import (
    AuthenticationError,
    DeadlineExceededError,
    IndexUnavailableError,
    InvalidRequestError,
    MessageTooLargeError,
    ServerOverloadedError,
    TemplateNotFoundError,
    ThoughtbankError,
)
from thoughtbank.retriever.prompt import DEFAULT_PROMPT, build_augmented_prompt
from thoughtbank.retriever.types import (
    AugmentedPrompt,
    IndexInfo,
    RetrievalQuery,
    RetrievalResult,
    ScoredTemplate,
)

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
