"""Retrieval quality benchmark on FusionBench's 14-task query mix (no LLM needed).

    python -m benchmarks.bench_quality [--quick]

Same-task precision@3 of thoughtbank's retrieval without a task label, leave-one-out and on
the train/test split, each beside its peer (dense similarity alone, the FusionFactory-style
baseline) and its ceiling (retrieval with the true task label, 1.0 by construction), plus the
share of tasks reaching the per-task goal (P@3 >= 0.85). The queries are embedded once and
shared by every method. ``--quick`` uses 20 train and 5 test queries per task.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from thoughtbank.index import Embedder
from thoughtbank.retriever.evaluation.dataset import (
    Protocol,
    read_labeled_queries,
    write_sample,
)
from thoughtbank.retriever.evaluation.retrieval import (
    EvalSettings,
    RetrievalEvaluation,
    embed_corpus,
    evaluate_retrieval,
)

QUERIES = "fusionbench_14_task_queries.jsonl.gz"
TASK_GOAL = 0.85
OVERALL_GOAL = 0.95


def _data_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return Path(os.environ.get("THOUGHTBANK_SHARED_DATA", default))


def _figures(name: str, evaluation: RetrievalEvaluation) -> dict[str, float]:
    ours = evaluation.reports["thoughtbank"]
    dense = evaluation.reports["dense"].overall.precision[3]
    p_at_3 = ours.overall.precision[3]
    per_task = [s.precision[3] for s in ours.per_task.values()]
    figures = {
        f"{name}_p_at_3": p_at_3,
        f"{name}_p_at_3_dense": dense,
        f"{name}_ratio_to_dense": p_at_3 / dense,
        f"{name}_ratio_to_label_ceiling": p_at_3 / 1.0,
        f"{name}_ratio_to_goal": p_at_3 / OVERALL_GOAL,
        f"{name}_min_task_p_at_3": min(per_task),
        f"{name}_tasks_at_goal_share": sum(p >= TASK_GOAL for p in per_task) / len(per_task),
        f"{name}_task_accuracy": evaluation.task_accuracy or 0.0,
    }
    print(
        f"{name}: P@3 {p_at_3:.3f} vs dense {dense:.3f} ({p_at_3 / dense:.2f}x), "
        f"vs label ceiling 1.000 ({p_at_3:.2f}x), goal {OVERALL_GOAL} "
        f"({p_at_3 / OVERALL_GOAL:.2f}x); lowest task {min(per_task):.3f} (goal {TASK_GOAL})"
    )
    return figures


def run(quick: bool) -> dict[str, float]:
    source = _data_dir() / QUERIES
    if not source.exists():
        print(f"skipped: {source} is absent (set THOUGHTBANK_SHARED_DATA)")
        return {}
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        path = (
            write_sample(source, Path(tmp) / "q.jsonl", {"train": 20, "test": 5})
            if quick
            else source
        )
        queries = read_labeled_queries(path)
    started = time.perf_counter()
    corpus = embed_corpus(queries, Embedder())
    figures = {"embed_seconds": time.perf_counter() - started}
    for name, protocol in (("loo", Protocol()), ("split", Protocol(leave_one_out=False))):
        settings = EvalSettings(protocol=protocol, ks=(1, 3), baselines=True)
        started = time.perf_counter()
        figures |= _figures(name, evaluate_retrieval(corpus, queries, settings))
        figures[f"{name}_eval_seconds"] = time.perf_counter() - started
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small sample, to check it works")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
