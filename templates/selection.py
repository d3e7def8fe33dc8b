"""Grouping of log records by query and selection of the responses worth distilling.

The default ``fusion`` strategy is FusionFactory's two-stage rule: rank by performance (desc)
then cost (asc) and keep 5, re-rank those by LLM-judge score (desc) then cost (asc) and keep
``top_n``. The other strategies trade accuracy against cost with a weighted score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from thoughtbank.normalize import normalize_query
from thoughtbank.templates.schema import LogRecord


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


def _cost(record: LogRecord) -> float:
    return math.inf if record.cost is None else record.cost


def _judge(record: LogRecord) -> float:
    return -math.inf if record.llm_judge is None else record.llm_judge


def _weighted_ranking(records: Sequence[LogRecord], alpha: float, beta: float) -> list[LogRecord]:
    costs = [r.cost for r in records if r.cost is not None]
    low, high = (min(costs), max(costs)) if costs else (0.0, 0.0)
    span = high - low

    def normalized_cost(record: LogRecord) -> float:
        if record.cost is None:
            return 1.0
        return (record.cost - low) / span if span > 0 else 0.0

    return sorted(
        records, key=lambda r: (-(alpha * r.performance - beta * normalized_cost(r)), _cost(r))
    )


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


@dataclass(frozen=True, slots=True)
class SelectionRules:
    """Which responses may be distilled from.

    ``min_performance=None`` counts only responses with performance > 0 as successes (logs score
    failed responses 0); a number counts those scoring at least that. ``allow_models`` (when
    given) and ``deny_models`` filter by model name, e.g. to distil from small models only.
    """

    min_performance: float | None = None
    allow_models: frozenset[str] | None = None
    deny_models: frozenset[str] = frozenset()

    def allows_model(self, record: LogRecord) -> bool:
        allowed = self.allow_models is None or record.llm in self.allow_models
        return allowed and record.llm not in self.deny_models

    def succeeded(self, record: LogRecord) -> bool:
        if self.min_performance is None:
            return record.performance > 0
        return record.performance >= self.min_performance


def select_top_responses(
    group: QueryGroup,
    strategy: Strategy = Strategy.FUSION,
    top_n: int = 3,
    rules: SelectionRules = SelectionRules(),
) -> list[LogRecord]:
    """The ``top_n`` successful responses of allowed models in ``group``, best first."""
    eligible = [r for r in group.records if rules.allows_model(r) and rules.succeeded(r)]
    return rank_responses(eligible, strategy)[:top_n]


def failed_responses(group: QueryGroup, rules: SelectionRules, limit: int) -> list[LogRecord]:
    """Up to ``limit`` failed responses of allowed models, the source of a pitfalls note."""
    failed = [r for r in group.records if rules.allows_model(r) and not rules.succeeded(r)]
    return sorted(failed, key=lambda r: (r.performance, r.llm))[:limit]
