"""BM25 (``rank-bm25``) over the dense candidates, blended into their order: an evaluated
alternative that is not served, since it adds nothing once retrieval is routed by task.

Hit scores stay cosine similarities; the blend only changes the order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rank_bm25 import BM25Okapi

from thoughtbank.retriever.serving.task_routing import TaskRouting

_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class HybridConfig(TaskRouting):
    """Task routing as served plus the lexical blend: ``lexical_weight`` over ``rerank_depth``
    dense candidates (0: dense order)."""

    lexical_weight: float = 0.0
    rerank_depth: int = 50


def lexical_tokens(text: str) -> list[str]:
    """Lower-cased word tokens, the unit BM25 counts."""
    return _TOKEN.findall(text.lower())


class LexicalScorer:
    """BM25 over a fixed list of documents (template source queries), scored on demand."""

    def __init__(self, documents: Sequence[str]) -> None:
        self._bm25 = BM25Okapi([lexical_tokens(d) or [""] for d in documents])

    def scores(self, query: str, rows: Sequence[int] | None = None) -> np.ndarray:
        """BM25 of ``query`` against ``rows`` (default: every document), in that order."""
        tokens = list(dict.fromkeys(lexical_tokens(query)))
        if rows is None:
            return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
        return np.asarray(self._bm25.get_batch_scores(tokens, list(rows)), dtype=np.float32)


def blend(dense: np.ndarray, lexical: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * dense + weight * lexical``, lexical scaled to [0, 1] by its maximum."""
    if weight == 0.0 or lexical.size == 0:
        return dense
    peak = float(lexical.max())
    scaled = lexical / peak if peak > 0 else lexical
    return (1.0 - weight) * dense + weight * scaled


def hybrid_order(
    query: str,
    rows: Sequence[int],
    dense: np.ndarray,
    lexical: LexicalScorer | None,
    config: HybridConfig,
) -> np.ndarray:
    """Positions of ``rows`` (dense candidates of ``query``) best first under the blend."""
    if lexical is None or config.lexical_weight == 0.0 or len(rows) == 0:
        return np.arange(len(rows))
    fused = blend(
        np.asarray(dense, dtype=np.float32), lexical.scores(query, rows), config.lexical_weight
    )
    return np.argsort(-fused, kind="stable")
