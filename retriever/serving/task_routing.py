"""Routing of a request without a task to the task its query is predicted to belong to.

The index's task classifier (``thoughtbank.index.task_classifier``) predicts a task for each
such request; when it is confident, retrieval is routed to that task's templates exactly as if
the caller had named it; when it is not, or the build measured that the task is often
missed (``thoughtbank.index.task_routing``), plain similarity decides: a wrong guess costs
little.
Hit scores stay cosine similarities, so ``min_score`` thresholds keep one meaning.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskRouting:
    """When a prediction routes a request; the default is the best on the FusionBench mix."""

    min_confidence: float = 0.3


def route_task(
    predicted_task: str,
    confidence: float,
    routing: TaskRouting,
    unrouted: AbstractSet[str] = frozenset(),
) -> str:
    """The task to retrieve within: the prediction when confident and not one of the index's
    ``unrouted`` tasks (held-out recall too low at build time), else none (plain similarity)."""
    if confidence < routing.min_confidence or predicted_task in unrouted:
        return ""
    return predicted_task
