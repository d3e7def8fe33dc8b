"""Presenting retrieval evaluations: a text table, JSON, and a PNG bar chart."""

from __future__ import annotations

import json
from pathlib import Path

from thoughtbank.retriever.evaluation.metrics import RetrievalReport
from thoughtbank.retriever.evaluation.retrieval import RetrievalEvaluation

CHART_FILE = "retrieval_p_at_k.png"
JSON_FILE = "retrieval.json"
# Chart geometry in inches at CHART_DPI: a fixed width, and per task a group of one bar per
# method, never thinner than a line of label text.
CHART_WIDTH_INCHES = 10.0
CHART_DPI = 100
BAR_INCHES = 0.12
GROUP_GAP_INCHES = 0.12
MIN_GROUP_INCHES = 0.3
CHART_MARGIN_INCHES = 1.6


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
    """Horizontal bars, one group per task: the height grows with the task count and the labels
    stay at reading size, where vertical groups of 15 tasks x 6 methods made a 6,300 px strip."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--report needs matplotlib: pip install '.[dev]'") from exc
    labels = ["overall", *sorted(reports["thoughtbank"].per_task)]
    methods = list(reports)
    group_height = max(MIN_GROUP_INCHES, BAR_INCHES * len(methods) + GROUP_GAP_INCHES)
    figure, axes = plt.subplots(
        figsize=(CHART_WIDTH_INCHES, CHART_MARGIN_INCHES + group_height * len(labels)),
        layout="constrained",
    )
    bar = 0.8 / len(methods)
    for position, name in enumerate(methods):
        values = [_precision(reports[name], label, k) for label in labels]
        rows = [i - 0.4 + (position + 0.5) * bar for i in range(len(labels))]
        axes.barh(rows, values, bar, label=name)
    axes.set_yticks(range(len(labels)), labels, fontsize=10)
    axes.set_ylim(len(labels) - 0.5, -0.5)  # overall at the top, then tasks A-Z
    axes.set_xlabel(f"same-task precision@{k}")
    axes.set_xlim(0, 1)
    axes.grid(axis="x", alpha=0.3)
    figure.legend(loc="outside lower center", ncols=min(len(methods), 6))
    figure.savefig(path, dpi=CHART_DPI)
    plt.close(figure)


def _precision(report: RetrievalReport, label: str, k: int) -> float:
    scores = report.overall if label == "overall" else report.per_task[label]
    return float(scores.precision[k])
