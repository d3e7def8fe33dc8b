"""Splitting queries into stem and options, on every option layout of the shared logs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from thoughtbank.templates.query_parts import QueryParts, split_query

MMLU_PRO = (
    "George is seen to place an even-money $100,000 bet on the Bulls to win the NBA Finals. If "
    "George has a logarithmic utility-of-wealth function and if his current wealth is "
    "$1,000,000, what must he believe is the minimum probability that the Bulls will win?\n"
    "A. 0.525\nB. 0.800\nC. 0.450\nD. 0.575\nE. 0.750\nF. 0.350\nG. 0.650\nH. 0.300\nI. 0.700\n"
    "J. 0.400"
)


def test_mmlu_pro_lines() -> None:
    parts = split_query(MMLU_PRO)
    assert parts.stem.endswith("minimum probability that the Bulls will win?")
    assert list(parts.options) == list("ABCDEFGHIJ")
    assert (parts.options["A"], parts.options["J"]) == ("0.525", "0.400")


def test_commonsense_qa_parenthesized_lines() -> None:
    query = (
        "Where do apples form on an apple tree?\n(A) south africa\n(B) sunshine\n"
        "(C) new york\n(D) bloom\n(E) palm"
    )
    assert split_query(query) == QueryParts(
        "Where do apples form on an apple tree?",
        {"A": "south africa", "B": "sunshine", "C": "new york", "D": "bloom", "E": "palm"},
    )


def test_aqua_letter_paren_without_space() -> None:
    query = (
        "Three birds are flying at a fast rate of 900 kilometers per hour. What is their "
        "speed in miles per minute? [1km = 0.6 miles]\nA)32400\nB)6000\nC)600\nD)60000\nE)10"
    )
    parts = split_query(query)
    assert parts.stem.endswith("[1km = 0.6 miles]")
    assert parts.options == {"A": "32400", "B": "6000", "C": "600", "D": "60000", "E": "10"}


def test_text_after_the_options_stays_in_the_stem() -> None:
    query = (
        "All the plotted points lie on what kind of curve?\n\n(A) Line\n(B) Circle\n"
        "(C) Parabola\n(D) Ellipse\n(E) Hyperbola\n\nEnter the letter of the correct option."
    )
    parts = split_query(query)
    assert parts.stem == (
        "All the plotted points lie on what kind of curve?\n\n"
        "Enter the letter of the correct option."
    )
    assert parts.options["E"] == "Hyperbola"


def test_an_option_spanning_lines_is_one_option() -> None:
    query = (
        "Which sequence removes duplicates?\nA. list1 ← Sort (list1)\n list2 ← Sort (list2)\n"
        "B. newList ← Combine (list1, list2)"
    )
    assert split_query(query).options == {
        "A": "list1 ← Sort (list1) list2 ← Sort (list2)",
        "B": "newList ← Combine (list1, list2)",
    }


def test_options_header_block_and_inline() -> None:
    block = split_query("What is 2 + 3?\nOptions:\nA. 4\nB. 5\nC. 6")
    assert block == QueryParts("What is 2 + 3?", {"A": "4", "B": "5", "C": "6"})
    inline = split_query("A train goes 60 km. Answer Choices: (A) 10 km (B) 20 km (C) 30 km")
    assert inline == QueryParts("A train goes 60 km.", {"A": "10 km", "B": "20 km", "C": "30 km"})
    bare = split_query("Pick one. Choices: A) red, B) blue")
    assert bare == QueryParts("Pick one.", {"A": "red", "B": "blue"})


def test_inline_parenthesized_options() -> None:
    query = "Where do apples form? (A) south africa (B) sunshine (C) new york (D) bloom (E) palm"
    parts = split_query(query)
    assert parts.stem == "Where do apples form?"
    assert parts.options["D"] == "bloom"


def test_real_options_win_over_lettered_statements_in_the_stem() -> None:
    query = (
        "Which is the only valid conclusion? (A) The selling price should be $160 per widget. "
        "(B) labor rates are excessive (C) output is labor intensive\n"
        "A. (C) output is labor intensive\nB. Each widget requires $50 of labor"
    )
    parts = split_query(query)
    assert parts.options == {
        "A": "(C) output is labor intensive",
        "B": "Each widget requires $50 of labor",
    }
    assert "(B) labor rates are excessive" in parts.stem


@pytest.mark.parametrize(
    "query",
    [
        "Let A and B be independent events with P (A) = 0.2 and P(B) = 0.8. Find P(A/B)?",
        "Compare (A) and (B).",
        "x = A.shape\ny = B.shape",
        "Which of the following must be true?\nI. the degree sum is even.\nII. |E| >= |V| - 1",
        "A. Smith wrote the report.\nHow many pages did it have?",
        "Which compounds are present from the following options: 1,2,4,5-tetramethylbenzene.",
        "Write a function to find the minimum cost path to reach (m, n) from (0, 0).",
    ],
)
def test_prose_formulas_and_code_have_no_options(query: str) -> None:
    assert split_query(query) == QueryParts(query.strip(), {})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("log", "tasks"),
    [
        ("mmlu_pro_29_models.jsonl.gz", {"mmlu_pro"}),
        ("reread_3_models_gsm8k_csqa_svamp.jsonl.gz", {"commonsenseqa"}),
        ("reference_solutions_math_aqua_mbpp_humaneval.jsonl.gz", {"aqua_rat"}),
    ],
)
def test_every_real_multiple_choice_query_has_its_gold_option(
    shared_data: Path, log: str, tasks: set[str]
) -> None:
    queries: dict[str, str] = {}
    with gzip.open(shared_data / log, "rt") as handle:
        for line in handle:
            row = json.loads(line)
            if row["task_name"].split("/")[0] in tasks:
                queries[row["query"]] = row["ground_truth"]
    assert queries
    for query, gold in queries.items():
        parts = split_query(query)
        assert gold in parts.options, query
        assert len(parts.options) >= 3 and parts.stem, query
        assert not any(
            parts.options[letter] in parts.stem.split("\n") for letter in parts.options
        ), query


def test_folded_queries_keep_their_options() -> None:
    folded = " ".join(MMLU_PRO.split())
    parts = split_query(folded)
    assert parts.options == split_query(MMLU_PRO).options
    assert parts.stem.endswith("the Bulls will win?")
    csqa = split_query("Where do apples form? (A) south africa (B) sunshine (C) bloom")
    assert csqa.options["C"] == "bloom"
    aqua = split_query("Speed in miles per minute? [1km = 0.6 miles] A)32400 B)6000 C)600")
    assert aqua.options == {"A": "32400", "B": "6000", "C": "600"}


def test_a_cut_off_last_option_ends_the_run() -> None:
    parts = split_query("It was just what? (A) case (B) reason (C) how (D) because (E)")
    assert parts.stem == "It was just what?"
    assert parts.options == {"A": "case", "B": "reason", "C": "how", "D": "because"}
