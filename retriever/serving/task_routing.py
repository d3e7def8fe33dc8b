"""Routing of a request without a task to the task its query is predicted to belong to.

The index's task classifier (``thoughtbank.index.task_classifier``) predicts a task for each
such request; when it is confident, retrieval is routed to that task's templates exactly as if
the caller had named it; when it is not, plain similarity decides, so a wrong guess costs little.
Hit scores stay cosine similarities, so ``min_score`` thresholds keep one meaning.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskRouting:
    """When a prediction routes a request; the default is the best on the FusionBench mix."""

    min_confidence: float = 0.3


def route_task(predicted_task: str, confidence: float, routing: TaskRouting) -> str:
    """The task to retrieve within: the prediction when confident, else none (plain similarity)."""
    return predicted_task if confidence >= routing.min_confidence else ""
