"""Retrieval, routing and template quality on the shared data (no LLM needed).

    python -m benchmarks.bench_quality [--quick]

Templates: every shared log mined with the default (extractive) distiller (``--no-merge``,
which only shortens the run) and scored by the quality battery (``thoughtbank eval
templates``): ``templates_<log>_<rate>`` per log. Routing: for every 2-task and 3-task index
that the shared logs' task families make, each task's held-out routing recall as the index
build measures it; ``routing_min_recall_<n>_tasks`` is the lowest over every index and task.

Same-task precision@3 of thoughtbank's retrieval without a task label, leave-one-out and on
the train/test split, each beside its peer (dense similarity alone, the FusionFactory-style
baseline) and its ceiling (retrieval with the true task label, 1.0 by construction), plus the
share of tasks reaching the per-task goal (P@3 >= 0.85). The queries are embedded once and
shared by every method. ``--quick`` uses 20 train and 5 test queries per task.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from thoughtbank.cli import main as thoughtbank_main
from thoughtbank.index import Embedder, TorchEmbedder, load_embedder, train_task_router
from thoughtbank.retriever.evaluation.dataset import (
    LabeledQuery,
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
from thoughtbank.templates import RejectSink
from thoughtbank.templates.quality import RATES, evaluate_template_file
from thoughtbank.templates.readers import iter_log_records

QUERIES = "fusionbench_14_task_queries.jsonl.gz"
TASK_GOAL = 0.85
OVERALL_GOAL = 0.95
#: Queries per task family in the routing indexes (a fixed, seeded sample).
ROUTING_QUERIES = {True: 60, False: 300}
ROUTING_GOAL = 0.95


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


def template_figures(data: Path, quick: bool) -> dict[str, float]:
    """The battery's rates on each shared log, mined with the defaults."""
    figures = {}
    logs = sorted(data.glob("*_models.jsonl.gz")) if quick else sorted(_logs(data))
    for log in logs[:1] if quick else logs:
        name = log.name.split(".")[0]
        with tempfile.TemporaryDirectory(prefix="bench-templates-") as tmp:
            out = Path(tmp) / "templates.jsonl"
            args = ["mine", str(log), "--out", str(out), "--no-merge", "--no-progress"]
            with contextlib.redirect_stdout(io.StringIO()):  # the mining summary
                mined = thoughtbank_main(args)
            if mined != 0:
                raise RuntimeError(f"mining {log} failed")
            report = evaluate_template_file(out, [log]).to_dict()["overall"]
        figures[f"templates_{name}_count"] = float(report["templates"])
        figures |= {f"templates_{name}_{rate}": float(report[rate]) for rate in RATES}
        worst = max(RATES, key=lambda rate: report[rate])
        print(f"templates {name}: {report['templates']}, worst rate {worst} {report[worst]:.4f}")
    return figures


def _logs(data: Path) -> list[Path]:
    return [
        p for p in data.iterdir() if p.name.endswith((".jsonl.gz", ".csv")) and p.name != QUERIES
    ]


def _family_queries(data: Path, per_family: int) -> dict[str, list[str]]:
    """A seeded sample of each task family's distinct queries ("mmlu_pro/law" is mmlu_pro)."""
    families: dict[str, set[str]] = {}
    for log in _logs(data):
        for record in iter_log_records([log], RejectSink()):
            families.setdefault(record.task_name.split("/")[0], set()).add(record.query)
    rng = np.random.default_rng(0)
    return {
        family: [str(q) for q in rng.permutation(sorted(queries))[:per_family]]
        for family, queries in sorted(families.items())
    }


def routing_figures(data: Path, embedder: Embedder, quick: bool) -> dict[str, float]:
    """The lowest held-out routing recall over every 2- and 3-family index and its tasks."""
    queries = _family_queries(data, ROUTING_QUERIES[quick])
    embedded = {family: embedder.encode(texts) for family, texts in queries.items()}
    figures = {}
    for size in (2, 3):
        lowest, where = 1.0, ""
        for combo in itertools.combinations(sorted(queries), size):
            texts = [q for family in combo for q in queries[family]]
            tasks = [family for family in combo for _ in queries[family]]
            embeddings = np.vstack([embedded[family] for family in combo])
            _, quality = train_task_router(texts, embeddings, tasks)
            task, recall = min(quality.recall.items(), key=lambda item: item[1])
            if recall < lowest:
                lowest, where = recall, f"{task} in {'+'.join(combo)}"
        figures[f"routing_min_recall_{size}_tasks"] = lowest
        figures[f"routing_min_recall_{size}_tasks_ratio_to_goal"] = lowest / ROUTING_GOAL
        print(f"routing, {size}-task indexes: lowest held-out recall {lowest:.3f} ({where})")
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
    embedder = TorchEmbedder()
    corpus = embed_corpus(queries, embedder)
    figures = {"embed_seconds": time.perf_counter() - started}
    for name, protocol in (("loo", Protocol()), ("split", Protocol(leave_one_out=False))):
        settings = EvalSettings(protocol=protocol, ks=(1, 3), baselines=True)
        started = time.perf_counter()
        figures |= _figures(name, evaluate_retrieval(corpus, queries, settings))
        figures[f"{name}_eval_seconds"] = time.perf_counter() - started
    figures |= default_backend_figures(queries, figures["split_p_at_3"])
    figures |= template_figures(_data_dir(), quick)
    return figures | routing_figures(_data_dir(), embedder, quick)


def default_backend_figures(queries: list[LabeledQuery], fp32_p_at_3: float) -> dict[str, float]:
    """The quality gate of the default embedding backend: split P@3 against torch fp32's."""
    fast = load_embedder()
    settings = EvalSettings(protocol=Protocol(leave_one_out=False), ks=(1, 3))
    evaluation = evaluate_retrieval(embed_corpus(queries, fast), queries, settings)
    p_at_3 = evaluation.reports["thoughtbank"].overall.precision[3]
    delta = p_at_3 - fp32_p_at_3
    print(f"split P@3 on {fast.describe()}: {p_at_3:.4f} ({delta:+.4f} vs torch fp32; goal 0.005)")
    return {"split_p_at_3_default_backend": p_at_3, "p_at_3_delta_default_vs_fp32": delta}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small sample, to check it works")
    print(json.dumps(run(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()
