"""The full FusionBench 14-task mix (6,322 queries): figures that must not regress.

The issue's goal (P@3 >= 0.95 overall, every task >= 0.85, without a label) is not reached
yet; these floors are the measured figures (leave-one-out P@3 0.932, lowest task openbook_qa
0.787; train/test 0.907) so that a change that loses quality fails here. The split's mmlu
test queries are MMLU subject questions while its train queries are reading passages, so
no method trained on the train side can find mmlu templates for them (P@3 0.18).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from thoughtbank.retriever.evaluation.dataset import Protocol, read_labeled_queries
from thoughtbank.retriever.evaluation.retrieval import (
    EvalSettings,
    embed_corpus,
    evaluate_retrieval,
)

QUERIES = "fusionbench_14_task_queries.jsonl.gz"
DENSE_LOO_P_AT_3 = 0.708  # exact cosine, no label: the baseline


@pytest.mark.slow
def test_fusionbench_mix_without_and_with_the_task_label(shared_data: Path, embedder) -> None:
    queries = read_labeled_queries(shared_data / QUERIES)
    corpus = embed_corpus(queries, embedder)

    loo = evaluate_retrieval(corpus, queries, EvalSettings(ks=(1, 3))).reports["thoughtbank"]
    assert loo.overall.precision[3] >= 0.92 > DENSE_LOO_P_AT_3 + 0.2
    assert round(min(s.precision[3] for s in loo.per_task.values()), 3) >= 0.77

    split = evaluate_retrieval(
        corpus, queries, EvalSettings(protocol=Protocol(leave_one_out=False), ks=(1, 3))
    ).reports["thoughtbank"]
    assert split.overall.precision[3] >= 0.89
    lowest = min(s.precision[3] for task, s in split.per_task.items() if task != "mmlu")
    assert round(lowest, 3) >= 0.78

    labeled = evaluate_retrieval(corpus, queries, EvalSettings(task_label="given", ks=(1, 3)))
    assert labeled.reports["thoughtbank"].overall.precision[3] == 1.0
