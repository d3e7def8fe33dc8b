"""thoughtbank: mine multi-LLM logs into thought templates and serve them by query similarity.

Stages, each in its own subpackage, talk through small typed objects and on-disk artifacts:
``templates`` (logs -> templates JSONL), ``index`` (templates -> versioned FAISS index),
``server`` (index -> gRPC), ``retriever`` (retrieval semantics, client SDK, LangChain).
"""

from thoughtbank._version import __version__

__all__ = ["__version__"]
