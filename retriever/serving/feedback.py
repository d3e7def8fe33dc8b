"""Outcome evidence in ranking: similarity plus ``weight`` x a template's estimated lift.

The estimates come from the index folder's outcome store (``thoughtbank.index.usefulness``) and
are replaced whole when a server reads new evidence, so requests see the old or the new ones,
never a mix. A template without evidence keeps its similarity; a retired one is not served.
The weight sets how much evidence outweighs similarity: at 0.1, a hundred uses with a lift near
+1 (an estimate of about 0.9) move a template up by 0.09, past a similarity gap of 0.05.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from thoughtbank.index import template_int_id
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.index.usefulness import Usefulness, estimate_usefulness

log = logging.getLogger("thoughtbank.server.feedback")

DEFAULT_USEFULNESS_WEIGHT = 0.1


class Scored(Protocol):
    @property
    def int_id(self) -> int: ...

    @property
    def score(self) -> float: ...


C = TypeVar("C", bound=Scored)


class UsefulnessRanking:
    """The lift estimates ranking uses now, shared by every engine of a server."""

    def __init__(self, weight: float = DEFAULT_USEFULNESS_WEIGHT) -> None:
        if not 0.0 <= weight <= 10.0:
            raise ValueError(f"usefulness_weight must be in [0, 10], got {weight}")
        self.weight = weight
        self._evidence: tuple[dict[int, float], frozenset[int]] = ({}, frozenset())

    def update(self, estimates: Mapping[str, Usefulness]) -> None:
        """Use ``estimates`` (by template id) from now on, in place of the previous ones."""
        lifts = {template_int_id(t): u.lift for t, u in estimates.items()}
        retired = frozenset(template_int_id(t) for t, u in estimates.items() if u.retired)
        self._evidence = (lifts, retired)  # one assignment: readers see old or new, not a mix

    @property
    def active(self) -> bool:
        """Whether any evidence would change a ranking."""
        lifts, retired = self._evidence
        return bool(self.weight and (lifts or retired))

    @property
    def retired(self) -> frozenset[int]:
        return self._evidence[1]

    def rerank(self, candidates: Sequence[C]) -> list[C]:
        """``candidates`` without retired templates, best blended score first (stable); as
        they are at weight 0."""
        if not self.weight:  # outcomes off: similarity alone, nothing retired
            return list(candidates)
        lifts, retired = self._evidence
        kept = [c for c in candidates if c.int_id not in retired]
        if not lifts:
            return kept
        return sorted(kept, key=lambda c: -(c.score + self.weight * lifts.get(c.int_id, 0.0)))


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
