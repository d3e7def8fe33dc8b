"""Usefulness: what outcomes say a template adds to an answer, as a shrunk estimate of its lift.

A use's lift is its answer's score minus a baseline: the same query answered without templates
when the app reported that, else the mean outcome score of the use's task. A template's estimate
is the posterior mean of its lift under a normal prior centred on zero and worth ``PRIOR_USES``
uses, so a template with few outcomes stays near zero and ranks by similarity alone. It is
retired when the upper end of its 95% interval is below zero after ``MIN_USES_TO_RETIRE`` uses:
evidence that it hurts, not only that it has not helped yet.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

PRIOR_USES = 10.0
MIN_USES_TO_RETIRE = 20
Z_95 = 1.96
# The spread of one lift assumed before the data say otherwise (scores lie in [0, 1]).
PRIOR_LIFT_VARIANCE = 0.25


@dataclass(frozen=True)
class TemplateUse:
    """One template in one scored prompt."""

    template_id: str
    task: str
    score: float
    baseline_score: float | None


@dataclass(frozen=True)
class Usefulness:
    """A template's evidence and what it says."""

    template_id: str
    uses: int
    mean_score: float
    lift: float  # the shrunk estimate: 0 without evidence
    lift_upper: float  # the upper end of its 95% interval
    retired: bool  # by the evidence, or by an operator


def estimate_usefulness(
    uses: Iterable[TemplateUse], overrides: Mapping[str, bool] | None = None
) -> dict[str, Usefulness]:
    """Per template with at least one use (or an override), its estimated lift and whether it
    is retired; ``overrides`` (an operator's retire or restore) win over the evidence."""
    uses = list(uses)
    task_mean = task_mean_scores(uses)
    by_template: dict[str, list[TemplateUse]] = defaultdict(list)
    for use in uses:
        by_template[use.template_id].append(use)
    estimates = {
        template_id: _estimate(template_id, own, task_mean)
        for template_id, own in by_template.items()
    }
    for template_id, retired in (overrides or {}).items():
        known = estimates.get(template_id, Usefulness(template_id, 0, 0.0, 0.0, 0.0, False))
        estimates[template_id] = replace(known, retired=retired)
    return estimates


def task_mean_scores(uses: Iterable[TemplateUse]) -> dict[str, float]:
    """Per task, the mean score of its uses: the baseline of a use that gave none."""
    task_scores: dict[str, list[float]] = defaultdict(list)
    for use in uses:
        task_scores[use.task].append(use.score)
    return {task: sum(s) / len(s) for task, s in task_scores.items()}


def lift_of(use: TemplateUse, task_mean: Mapping[str, float]) -> float:
    """The use's score minus its baseline (its own, else its task's mean score)."""
    baseline = use.baseline_score if use.baseline_score is not None else task_mean[use.task]
    return use.score - baseline


def _estimate(template_id: str, uses: list[TemplateUse], task_mean: dict[str, float]) -> Usefulness:
    lifts = [lift_of(u, task_mean) for u in uses]
    n = len(lifts)
    sample_mean = sum(lifts) / n
    spread = sum((lift - sample_mean) ** 2 for lift in lifts)
    variance = (PRIOR_USES * PRIOR_LIFT_VARIANCE + spread) / (PRIOR_USES + n)
    lift = sum(lifts) / (PRIOR_USES + n)
    upper = lift + Z_95 * math.sqrt(variance / (PRIOR_USES + n))
    return Usefulness(
        template_id=template_id,
        uses=n,
        mean_score=sum(u.score for u in uses) / n,
        lift=lift,
        lift_upper=upper,
        retired=n >= MIN_USES_TO_RETIRE and upper < 0,
    )
