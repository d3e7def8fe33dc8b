"""Grouping and response selection: every strategy against a ranking computed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from thoughtbank.templates.schema import LogRecord
from thoughtbank.templates.selection import (
    QueryGroup,
    SelectionRules,
    Strategy,
    failed_responses,
    normalize_query,
    rank_responses,
    select_top_responses,
)
from thoughtbank.templates.spool import GroupSpool


def record(
    llm: str,
    performance: float,
    cost: float | None,
    judge: float | None,
    query: str = "Q?",
    task: str = "t",
) -> LogRecord:
    return LogRecord(
        task, query, llm, f"response of {llm}", performance, cost=cost, llm_judge=judge
    )


RECORDS = (
    record("A", 1.0, 0.05, 0.6),
    record("B", 1.0, 0.01, 0.9),
    record("C", 0.8, 0.002, 0.95),
    record("D", 0.5, 0.001, None),
    record("E", 1.0, None, 0.7),
    record("F", 0.9, 0.03, 0.8),
    record("G", 0.0, 0.0001, 1.0),
)
GROUP = QueryGroup("t", "Q?", RECORDS)

# Costs of the successful responses span 0.001..0.05, so normalized cost = (cost - 0.001) / 0.049
# (unknown cost counts as 1): A 1, B 0.184, C 0.020, D 0, E 1, F 0.592.
# balanced = 0.5 p - 0.5 nc: B 0.408, C 0.390, D 0.250, F 0.154, A 0 (cost 0.05), E 0 (no cost)
# cost = 0.2 p - 0.8 nc:     C 0.144, D 0.100, B 0.053, F -0.293, A -0.6, E -0.6
# performance (desc, then cost asc): B, A, E, F, C, D
# fusion: the top 5 by performance [B, A, E, F, C] re-ranked by judge: C .95, B .9, F .8, E .7, A .6
# judge (desc, unknown last): C, B, F, E, A, D
EXPECTED_RANKINGS = {
    Strategy.PERFORMANCE: "BAEFCD",
    Strategy.FUSION: "CBFEAD",
    Strategy.JUDGE: "CBFEAD",
    Strategy.BALANCED: "BCDFAE",
    Strategy.COST: "CDBFAE",
}


@pytest.mark.parametrize("strategy", list(Strategy))
def test_ranking_matches_hand_computed_order(strategy: Strategy) -> None:
    eligible = [r for r in RECORDS if r.performance > 0]
    assert "".join(r.llm for r in rank_responses(eligible, strategy)) == EXPECTED_RANKINGS[strategy]


def test_fusion_keeps_top_n_of_its_second_stage() -> None:
    assert [r.llm for r in select_top_responses(GROUP)] == ["C", "B", "F"]
    assert [r.llm for r in select_top_responses(GROUP, Strategy.COST, top_n=2)] == ["C", "D"]


def test_failed_responses_are_dropped_unless_a_threshold_is_given() -> None:
    assert "G" not in {r.llm for r in select_top_responses(GROUP, top_n=10)}
    strict = SelectionRules(min_performance=0.9)
    assert [r.llm for r in select_top_responses(GROUP, Strategy.PERFORMANCE, 10, strict)] == [
        "B",
        "A",
        "E",
        "F",
    ]
    everything = SelectionRules(min_performance=0.0)
    assert len(select_top_responses(GROUP, top_n=10, rules=everything)) == 7


def test_allow_and_deny_lists() -> None:
    small_only = SelectionRules(allow_models=frozenset({"C", "D", "G"}))
    assert [r.llm for r in select_top_responses(GROUP, rules=small_only)] == ["C", "D"]
    no_c = SelectionRules(deny_models=frozenset({"C"}))
    assert [r.llm for r in select_top_responses(GROUP, rules=no_c)] == ["B", "F", "E"]


def test_failed_responses_feed_pitfalls() -> None:
    assert [r.llm for r in failed_responses(GROUP, SelectionRules(), limit=3)] == ["G"]
    rules = SelectionRules(min_performance=0.9)
    assert [r.llm for r in failed_responses(GROUP, rules, limit=2)] == ["G", "D"]


@pytest.mark.parametrize(
    ("query", "normalized"),
    [
        ("What is 2+2?  Let's think step by step.", "What is 2+2?"),
        ("What is 2+2?\nAnswer:", "What is 2+2?"),
        ("What is 2+2? Let's solve this step by step. A:", "What is 2+2?"),
        ("  What   is\n2+2? ", "What is 2+2?"),
        ("What is the data: 4?", "What is the data: 4?"),
    ],
)
def test_normalize_query(query: str, normalized: str) -> None:
    assert normalize_query(query) == normalized


def test_spool_groups_by_task_and_normalized_query_keeping_think_variants(tmp_path: Path) -> None:
    records = [
        record("m", 1.0, None, None, query="Q2? Let's think step by step."),
        record("m", 1.0, None, None, query="Q1?"),
        record("m_think", 0.0, None, None, query="Q2?"),
        record("m", 1.0, None, None, query="Q2?", task="other"),
    ]
    with GroupSpool(tmp_path) as spool:
        spool.add_all(records)
        groups = list(spool.groups())
        assert spool.group_count() == 3
    assert [(g.task, g.query, [r.llm for r in g.records]) for g in groups] == [
        ("other", "Q2?", ["m"]),
        ("t", "Q1?", ["m"]),
        ("t", "Q2?", ["m", "m_think"]),
    ]
    assert groups[2].records[0] == records[0]
    assert list(tmp_path.iterdir()) == []
