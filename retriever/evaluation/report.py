"""Presenting retrieval evaluations: a text table, JSON, and a PNG bar chart."""

from __future__ import annotations

import json
from pathlib import Path

from thoughtbank.retriever.evaluation.metrics import RetrievalReport
from thoughtbank.retriever.evaluation.retrieval import RetrievalEvaluation

CHART_FILE = "retrieval_p_at_k.png"
JSON_FILE = "retrieval.json"


def format_table(evaluation: RetrievalEvaluation, ks: tuple[int, ...]) -> str:
    """Methods side by side overall, then the configured method per task."""
    columns = [f"P@{k}" for k in ks] + [f"hit@{k}" for k in ks] + ["MRR", "n"]
    lines = [_row("method", columns)]
    lines += [
        _row(name, _cells(report.overall.to_dict(), ks))
        for name, report in evaluation.reports.items()
    ]
    lines += ["", _row("task (thoughtbank)", columns)]
    per_task = evaluation.reports["thoughtbank"].per_task
    lines += [_row(task, _cells(scores.to_dict(), ks)) for task, scores in sorted(per_task.items())]
    if evaluation.task_accuracy is not None:
        lines += [
            "",
            f"task inference accuracy {evaluation.task_accuracy:.3f}, "
            f"routed by predicted task {evaluation.routed_share:.1%}, "
            f"calibration error (ECE) {evaluation.calibration_error:.3f}",
        ]
    return "\n".join(lines)


def _cells(flat: dict[str, float | int], ks: tuple[int, ...]) -> list[str]:
    values = [flat[f"p_at_{k}"] for k in ks] + [flat[f"hit_at_{k}"] for k in ks] + [flat["mrr"]]
    return [f"{v:.3f}" for v in values] + [str(flat["count"])]


def _row(label: str, cells: list[str]) -> str:
    return f"{label:<24}" + "".join(f"{c:>8}" for c in cells)


def write_report(evaluation: RetrievalEvaluation, folder: Path, k: int) -> list[Path]:
    """JSON of everything and a per-task P@k bar chart (one bar per method) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / JSON_FILE
    json_path.write_text(json.dumps(evaluation.to_dict(), indent=2))
    chart_path = folder / CHART_FILE
    _bar_chart(evaluation.reports, k, chart_path)
    return [json_path, chart_path]


def _bar_chart(reports: dict[str, RetrievalReport], k: int, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--report needs matplotlib: pip install 'thoughtbank[dev]'") from exc
    tasks = sorted(reports["thoughtbank"].per_task)
    labels = [*tasks, "overall"]
    width = 0.8 / len(reports)
    figure, axes = plt.subplots(figsize=(max(8.0, 0.7 * len(labels) * len(reports)), 5))
    for position, (name, report) in enumerate(reports.items()):
        values = [report.per_task[t].precision[k] for t in tasks] + [report.overall.precision[k]]
        axes.bar([i + position * width for i in range(len(labels))], values, width, label=name)
    axes.set_xticks(
        [i + 0.4 - width / 2 for i in range(len(labels))], labels, rotation=45, ha="right"
    )
    axes.set_ylabel(f"same-task precision@{k}")
    axes.set_ylim(0, 1.05)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
