"""FusionBench's 14-task mix: retrieval figures that must not regress.

The test runs on a task-balanced slice (the first 200 train and 50 test queries of every task,
3,364 queries) so that CI embeds half the mix; ``bench_quality`` measures the whole mix
(leave-one-out P@3 0.932, train/test 0.907). The floors are the slice's measured figures less
0.01: leave-one-out P@3 0.922 with openbook_qa lowest at 0.659, train/test 0.890 with
openbook_qa lowest at 0.700 outside mmlu. The split's mmlu test queries are MMLU subject
questions while its train queries are reading passages, so no method trained on the train side
can find mmlu templates for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from thoughtbank.retriever.evaluation.dataset import Protocol, read_labeled_queries, write_sample
from thoughtbank.retriever.evaluation.retrieval import (
    EvalSettings,
    embed_corpus,
    evaluate_retrieval,
)

QUERIES = "fusionbench_14_task_queries.jsonl.gz"
SLICE = {"train": 200, "test": 50}
DENSE_LOO_P_AT_3 = 0.708  # exact cosine, no label, on the whole mix: the baseline


@pytest.mark.slow
def test_fusionbench_mix_without_and_with_the_task_label(
    shared_data: Path, tmp_path: Path, embedder
) -> None:
    queries = read_labeled_queries(write_sample(shared_data / QUERIES, tmp_path / "q.jsonl", SLICE))
    assert len(queries) == 3364
    corpus = embed_corpus(queries, embedder)

    loo = evaluate_retrieval(corpus, queries, EvalSettings(ks=(1, 3))).reports["thoughtbank"]
    assert loo.overall.precision[3] >= 0.91 > DENSE_LOO_P_AT_3 + 0.2
    assert min(s.precision[3] for s in loo.per_task.values()) >= 0.649

    split = evaluate_retrieval(
        corpus, queries, EvalSettings(protocol=Protocol(leave_one_out=False), ks=(1, 3))
    ).reports["thoughtbank"]
    assert split.overall.precision[3] >= 0.88
    assert min(s.precision[3] for task, s in split.per_task.items() if task != "mmlu") >= 0.69

    labeled = evaluate_retrieval(corpus, queries, EvalSettings(task_label="given", ks=(1, 3)))
    assert labeled.reports["thoughtbank"].overall.precision[3] == 1.0
