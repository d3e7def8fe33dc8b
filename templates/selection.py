"""Grouping of log records by query and selection of the responses worth distilling.

The default ``fusion`` strategy is FusionFactory's two-stage rule: rank by performance (desc)
then cost (asc) and keep 5, re-rank those by LLM-judge score (desc) then cost (asc) and keep
``top_n``. The other strategies trade accuracy against cost with a weighted score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from thoughtbank.templates.schema import LogRecord

_PROMPT_SUFFIXES = re.compile(
    r"(\s*(let'?s think step by step|think step by step|let'?s solve this step by step|"
    r"answer:?|a:)\s*[.:]?\s*)+$",
    re.IGNORECASE,
)
_WHITESPACE = re.compile(r"\s+")


class Strategy(str, Enum):
    FUSION = "fusion"
    PERFORMANCE = "performance"
    BALANCED = "balanced"
    COST = "cost"
    JUDGE = "judge"


#: (alpha, beta) of score = alpha * performance - beta * normalized cost.
WEIGHTED_STRATEGIES = {Strategy.BALANCED: (0.5, 0.5), Strategy.COST: (0.2, 0.8)}
FUSION_FIRST_STAGE = 5


@dataclass(frozen=True, slots=True)
class QueryGroup:
    """All logged responses to one (task, normalized query)."""

    task: str
    query: str
    records: tuple[LogRecord, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.task, normalize_query(self.query))


def normalize_query(query: str) -> str:
    """Drop prompt boilerplate appended to queries ("Let's think step by step") and fold space."""
    return _WHITESPACE.sub(" ", _PROMPT_SUFFIXES.sub("", query.strip())).strip()


def group_by_query(records: Iterable[LogRecord]) -> list[QueryGroup]:
    """Group records by (task, normalized query), in first-seen order."""
    groups: dict[tuple[str, str], list[LogRecord]] = {}
    for record in records:
        groups.setdefault((record.task_name, normalize_query(record.query)), []).append(record)
    return [
        QueryGroup(task=task, query=query, records=tuple(rows))
        for (task, query), rows in groups.items()
    ]


def _cost(record: LogRecord) -> float:
    return math.inf if record.cost is None else record.cost


def _judge(record: LogRecord) -> float:
    return -math.inf if record.llm_judge is None else record.llm_judge


def _weighted_ranking(
    records: Sequence[LogRecord], alpha: float, beta: float
) -> list[LogRecord]:
    costs = [r.cost for r in records if r.cost is not None]
    low, high = (min(costs), max(costs)) if costs else (0.0, 0.0)
    span = high - low

    def normalized_cost(record: LogRecord) -> float:
        if record.cost is None:
            return 1.0
        return (record.cost - low) / span if span > 0 else 0.0

    return sorted(records, key=lambda r: (-(alpha * r.performance - beta * normalized_cost(r)),
                                          _cost(r)))


def rank_responses(records: Sequence[LogRecord], strategy: Strategy) -> list[LogRecord]:
    """All records, best first, under ``strategy`` (stable for ties)."""
    by_performance = sorted(records, key=lambda r: (-r.performance, _cost(r)))
    if strategy is Strategy.PERFORMANCE:
        return by_performance
    if strategy is Strategy.FUSION:
        head = sorted(by_performance[:FUSION_FIRST_STAGE], key=lambda r: (-_judge(r), _cost(r)))
        return head + by_performance[FUSION_FIRST_STAGE:]
    if strategy is Strategy.JUDGE:
        return sorted(records, key=lambda r: (-_judge(r), -r.performance, _cost(r)))
    alpha, beta = WEIGHTED_STRATEGIES[strategy]
    return _weighted_ranking(records, alpha, beta)


def select_top_responses(
    group: QueryGroup,
    strategy: Strategy = Strategy.FUSION,
    top_n: int = 3,
    min_performance: float | None = None,
    allow_models: frozenset[str] | None = None,
    deny_models: frozenset[str] = frozenset(),
) -> list[LogRecord]:
    """The ``top_n`` responses of ``group`` to distil from.

    ``min_performance=None`` drops failed responses (performance 0); a number keeps responses
    scoring at least that. ``allow_models``/``deny_models`` filter by model name first.
    """
    eligible = [
        r for r in group.records
        if (allow_models is None or r.llm in allow_models) and r.llm not in deny_models
        and (r.performance > 0 if min_performance is None else r.performance >= min_performance)
    ]
    return rank_responses(eligible, strategy)[:top_n]
