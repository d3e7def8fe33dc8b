"""Outcome evidence in ranking: similarity plus ``weight`` x a template's estimated lift.

The estimates come from the index folder's outcome store (``thoughtbank.index.usefulness``) and
are replaced whole when a server reads new evidence, so requests see the old or the new ones,
never a mix. A template without evidence keeps its similarity; a retired one is not served.
The weight sets how much evidence outweighs similarity: at 0.1, a hundred uses with a lift near
+1 (an estimate of about 0.9) move a template up by 0.09, past a similarity gap of 0.05.

Exploration (off by default) is Thompson sampling: each request ranks by a draw from every
candidate's posterior lift instead of its mean, times ``exploration``, so a template that is
never first by its mean is still shown now and then among near-ties and can earn evidence. Its
cost is paid in answers: a share of prompts carries a template that the evidence so far ranks
lower, and rankings vary between identical requests.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from thoughtbank.index import template_int_id
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.index.usefulness import (
    PRIOR_LIFT_VARIANCE,
    PRIOR_USES,
    Z_95,
    Usefulness,
    estimate_usefulness,
)

log = logging.getLogger("thoughtbank.server.feedback")

DEFAULT_USEFULNESS_WEIGHT = 0.1
# The posterior spread of a template without outcomes: the prior's, worth PRIOR_USES uses.
PRIOR_SPREAD = math.sqrt(PRIOR_LIFT_VARIANCE / PRIOR_USES)


@dataclass(frozen=True)
class _Evidence:
    lifts: dict[int, float]
    spreads: dict[int, float]  # posterior standard deviation of the lift
    retired: frozenset[int]


class Scored(Protocol):
    @property
    def int_id(self) -> int: ...

    @property
    def score(self) -> float: ...


C = TypeVar("C", bound=Scored)


class UsefulnessRanking:
    """The lift estimates ranking uses now, shared by every engine of a server."""

    def __init__(
        self,
        weight: float = DEFAULT_USEFULNESS_WEIGHT,
        exploration: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= weight <= 10.0:
            raise ValueError(f"usefulness_weight must be in [0, 10], got {weight}")
        if not 0.0 <= exploration <= 10.0:
            raise ValueError(f"exploration must be in [0, 10], got {exploration}")
        self.weight = weight
        self.exploration = exploration
        self._random = random.Random(seed)
        self._evidence = _Evidence({}, {}, frozenset())

    def update(self, estimates: Mapping[str, Usefulness]) -> None:
        """Use ``estimates`` (by template id) from now on, in place of the previous ones."""
        self._evidence = _Evidence(  # one assignment: readers see old or new, not a mix
            lifts={template_int_id(t): u.lift for t, u in estimates.items()},
            spreads={
                template_int_id(t): (u.lift_upper - u.lift) / Z_95 for t, u in estimates.items()
            },
            retired=frozenset(template_int_id(t) for t, u in estimates.items() if u.retired),
        )

    @property
    def active(self) -> bool:
        """Whether evidence or exploration would change a ranking."""
        evidence = self._evidence
        return bool(self.weight and (evidence.lifts or evidence.retired or self.exploration))

    @property
    def retired(self) -> frozenset[int]:
        return self._evidence.retired

    def rerank(self, candidates: Sequence[C]) -> list[C]:
        """``candidates`` without retired templates, best blended score first (stable); as
        they are at weight 0."""
        if not self.weight:  # outcomes off: similarity alone, nothing retired
            return list(candidates)
        evidence = self._evidence
        kept = [c for c in candidates if c.int_id not in evidence.retired]
        if self.exploration:
            return sorted(kept, key=lambda c: -(c.score + self.weight * self._draw(evidence, c)))
        if not evidence.lifts:
            return kept
        lifts = evidence.lifts
        return sorted(kept, key=lambda c: -(c.score + self.weight * lifts.get(c.int_id, 0.0)))

    def _draw(self, evidence: _Evidence, candidate: Scored) -> float:
        """A lift drawn from ``candidate``'s posterior (the prior without evidence)."""
        mean = evidence.lifts.get(candidate.int_id, 0.0)
        spread = evidence.spreads.get(candidate.int_id, PRIOR_SPREAD)
        return mean + self.exploration * spread * self._random.gauss(0.0, 1.0)


def read_evidence(store: OutcomeStore, ranking: UsefulnessRanking) -> None:
    """Give ``ranking`` the estimates of everything ``store`` holds (nothing before the first
    outcome: the store file is not created by reading)."""
    if store.path.exists():
        ranking.update(estimate_usefulness(store.template_uses(), store.overrides()))


async def follow_outcomes(read: Callable[[], None], interval: float) -> None:
    """Run ``read`` (``read_evidence`` and what reports it) every ``interval`` seconds, off the
    event loop; a failed read is logged and the last estimates keep ranking."""
    while True:
        try:
            await asyncio.to_thread(read)
        except Exception:  # a locked or damaged store must not stop serving
            log.exception("reading the outcome store failed; ranking keeps the last evidence")
        await asyncio.sleep(interval)
