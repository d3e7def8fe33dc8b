"""Query-time stage: retrieval semantics, prompt augmentation and the client SDK."""

from thoughtbank.retriever.client import ThoughtbankClient
from thoughtbank.retriever.errors import (
    InvalidRequestError,
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
    "AugmentedPrompt",
    "IndexInfo",
    "InvalidRequestError",
    "RetrievalQuery",
    "RetrievalResult",
    "ScoredTemplate",
    "TemplateNotFoundError",
    "ThoughtbankClient",
    "ThoughtbankError",
    "build_augmented_prompt",
]
