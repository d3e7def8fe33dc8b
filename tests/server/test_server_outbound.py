"""The outbound budget on its own: reservations per connection and in total, settled to the
answer's real size, released once; refusals name the limit."""

from __future__ import annotations

import math

import pytest

from thoughtbank.retriever.errors import ServerOverloadedError
from thoughtbank.retriever.serving.outbound import INITIAL_BYTES_PER_HIT, OutboundBudget


def test_a_connection_is_refused_past_its_budget_but_others_are_not() -> None:
    budget = OutboundBudget(per_connection=10 * INITIAL_BYTES_PER_HIT, total=1 << 30)
    first = budget.reserve("peer-a", hits=6)
    with pytest.raises(ServerOverloadedError, match="max_unsent_bytes_per_connection"):
        budget.reserve("peer-a", hits=6)
    budget.reserve("peer-b", hits=6)
    first.release()
    budget.reserve("peer-a", hits=6)


def test_the_total_budget_spans_connections() -> None:
    totals: list[int] = []
    budget = OutboundBudget(1 << 30, total=10 * INITIAL_BYTES_PER_HIT, on_change=totals.append)
    budget.reserve("peer-a", hits=6)
    with pytest.raises(ServerOverloadedError, match=r"max_unsent_bytes\)"):
        budget.reserve("peer-b", hits=6)
    assert totals == [6 * INITIAL_BYTES_PER_HIT]


def test_one_call_alone_may_exceed_the_budget() -> None:
    """A single answer is bounded by the message size limit; refusing it could never succeed."""
    budget = OutboundBudget(per_connection=1, total=1)
    assert budget.reserve("peer-a", hits=100).size == 100 * INITIAL_BYTES_PER_HIT


def test_settling_and_releasing_keep_the_books() -> None:
    budget = OutboundBudget(1 << 30, 1 << 30)
    reservation = budget.reserve("peer-a", hits=4)
    reservation.resize(10_000)
    assert budget.held("peer-a") == budget.held() == 10_000
    reservation.release()
    reservation.release()
    assert budget.held("peer-a") == budget.held() == 0


def test_the_estimate_follows_the_mean_answer_per_hit() -> None:
    budget = OutboundBudget(1 << 30, 1 << 30)
    for _ in range(100):
        budget.learn(10_000, hits=4)
    assert budget.bytes_per_hit == pytest.approx(2_500, abs=1)
    budget.learn(1_000_000, hits=1)  # one outlier moves it a tenth of the way, not all of it
    assert budget.bytes_per_hit < 110_000
    assert budget.reserve("peer-a", hits=2).size == math.ceil(2 * budget.bytes_per_hit)
