"""``make bench``: run every benchmark module, then write ``benchmarks/report/REPORT.md``, PNG
plots and ``summary.json`` (the headline ratios, under fixed keys other tools read).

Each module ``benchmarks/bench_<area>.py`` exposes ``run(quick) -> dict[str, float]``; they run
one after the other in this process so none competes with another for the 2 cores. A module
that is absent or fails is named in the report with the reason, and its headline figures are
``null`` in the summary: one broken benchmark never hides the others' figures.

Usage: ``python -m benchmarks.run_all [--quick] [--only AREA ...] [--out DIR]``
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import REPORT_DIR, machine_info

#: Run order: the serving and index figures first, the slow mining runs after.
AREAS = (
    "embed",
    "serving",
    "index",
    "hot_swap",
    "memory",
    "startup",
    "mining",
    "quality",
    "feedback",
    "browser",
)


@dataclass(frozen=True)
class Headline:
    """One ``summary.json`` key: which module figure it is and what it compares."""

    key: str
    area: str
    figure: str
    meaning: str
    goal: str


HEADLINES = (
    Headline(
        "serve_vs_ceiling_32",
        "serving",
        "ratio_to_ceiling_32",
        "served Retrieve req/s at 32 clients / in-process encode+search at batch 32",
        ">= 0.85",
    ),
    Headline(
        "serve_vs_langchain_32",
        "serving",
        "ratio_to_langchain_32",
        "served req/s at 32 clients / LangChain SemanticSimilarityExampleSelector req/s",
        ">= 2",
    ),
    Headline(
        "serve_p50_vs_inprocess_1",
        "serving",
        "p50_ratio_to_one_call_1",
        "served p50 at 1 client / one in-process encode+search",
        "<= 1.15",
    ),
    Headline(
        "single_p99_beside_batches",
        "serving",
        "fair_p99_ratio",
        "p99 of single Retrieves beside 32 clients sending RetrieveBatch of 1,000 / p99 alone",
        "<= 3",
    ),
    Headline(
        "mining_vs_ideal_32",
        "mining",
        "ratio_to_ideal_32",
        "templates/s with a 200 ms fake chat model at 32 workers / the ideal 32 / 0.2 s",
        ">= 0.9",
    ),
    Headline(
        "ray_mining_vs_ideal_64",
        "mining",
        "ray_steady_vs_ideal_64",
        "steady templates/s on a local Ray instance, 64 calls of a 200 ms fake / 64 / 0.2 s",
        ">= 0.85",
    ),
    Headline(
        "ray_embedding_vs_local",
        "mining",
        "embed_ray_steady_vs_local",
        "steady build_index templates/s on a Ray actor pool / build_index on the local embedder",
        ">= 0.8",
    ),
    Headline(
        "build_vs_encode",
        "index",
        "embed_build_vs_raw",
        "build_index templates/s with the real model / raw Embedder.encode texts/s",
        ">= 0.9",
    ),
    Headline(
        "serve_fast_vs_fp32_ceiling_32",
        "serving",
        "serve_fast_vs_fp32_ceiling_32",
        "served req/s at 32 clients on the default backend / torch fp32 in-process ceiling",
        ">= 2.5",
    ),
    Headline(
        "serve_fast_vs_own_ceiling_32",
        "serving",
        "serve_fast_vs_own_ceiling_32",
        "served req/s at 32 clients on the default backend / its own in-process ceiling",
        ">= 0.85",
    ),
    Headline(
        "p50_fast_vs_fp32_served_1",
        "serving",
        "p50_fast_vs_fp32_served_1",
        "1-client served p50 on the default backend / on torch fp32",
        "<= 0.5",
    ),
    Headline(
        "p50_fast_vs_retriever_plus_rtt_1",
        "serving",
        "p50_fast_vs_retriever_plus_rtt_1",
        "1-client served p50, default backend / (in-process retrieve + idle no-op round trip)",
        "<= 1.10",
    ),
    Headline(
        "build_fast_vs_fp32",
        "embed",
        "build_fast_vs_fp32",
        "build_index templates/s on the default backend / on torch fp32",
        ">= 2.5",
    ),
    Headline(
        "quality_p_at_3_delta_vs_fp32",
        "quality",
        "p_at_3_delta_default_vs_fp32",
        "split P@3 on the default backend - on torch fp32",
        ">= -0.005",
    ),
    Headline(
        "server_rss_vs_ideal_100k",
        "memory",
        "rss_vs_ideal",
        "server RSS at 100k templates / (model file + vectors + template text), default backend",
        "<= 2",
    ),
    Headline(
        "added_namespace_vs_data",
        "memory",
        "added_namespace_vs_data",
        "server RSS per namespace added from 1 to 16 / one 10k namespace's vectors + texts",
        "<= 1.5",
    ),
    Headline(
        "hot_swap_seconds_100k",
        "hot_swap",
        "hot_swap_seconds",
        "seconds from CURRENT naming a new 100k version (1% new templates) to its first answer",
        "<= 2",
    ),
    Headline(
        "hot_swap_seconds_100k_all_new",
        "hot_swap",
        "hot_swap_seconds_all_new",
        "the same for a 100k version whose every template is new",
        "< cold start",
    ),
    Headline(
        "failed_requests_during_swap",
        "hot_swap",
        "failed_requests_during_swap",
        "requests of 32 clients that failed across the swap",
        "0",
    ),
    Headline(
        "feedback_oracle_gain_share_5k",
        "feedback",
        "oracle_gain_share_at_goal",
        "simulated app: share of the oracle's gain over similarity-only after 5k outcomes",
        ">= 0.8",
    ),
    Headline(
        "feedback_worst_task_delta_20k",
        "feedback",
        "worst_task_delta_at_end",
        "simulated accuracy of the worst task after 20k outcomes - with similarity alone",
        ">= 0",
    ),
    Headline(
        "record_outcome_per_s_32",
        "feedback",
        "record_outcome_per_s_32",
        "durable RecordOutcome calls/s at 32 clients",
        ">= 1000",
    ),
    Headline(
        "browser_worst_p95_vs_goal_100k",
        "browser",
        "worst_p95_vs_goal",
        "template browser: the slowest page's server-side p95 at 100k templates / 200 ms",
        "< 1",
    ),
    Headline(
        "startup_version_vs_grpc",
        "startup",
        "version_vs_grpc_import",
        "`thoughtbank --version` wall time / `python -c 'import grpc'`",
        "<= 4",
    ),
    Headline(
        "startup_query_vs_grpc",
        "startup",
        "query_vs_grpc_import",
        "`thoughtbank query --server` against a running server / `python -c 'import grpc'`",
        "<= 4",
    ),
)


@dataclass
class AreaRun:
    """One module's outcome: its figures, or why there are none."""

    area: str
    figures: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    problem: str = ""

    @property
    def module(self) -> str:
        return f"benchmarks.bench_{self.area}"


def run_area(area: str, quick: bool) -> AreaRun:
    """Import and run one benchmark module; an absent or failing one becomes a ``problem``."""
    outcome = AreaRun(area)
    try:
        module = importlib.import_module(outcome.module)
    except ModuleNotFoundError as exc:
        if exc.name != outcome.module:
            raise
        outcome.problem = f"{outcome.module} does not exist yet"
        return outcome
    print(f"== {outcome.module} ({'quick' if quick else 'full'})", flush=True)
    start = time.perf_counter()
    try:
        outcome.figures = {name: float(value) for name, value in module.run(quick).items()}
    except Exception as exc:  # reported, so the other benchmarks still count
        traceback.print_exc()
        outcome.problem = f"failed: {type(exc).__name__}: {exc}"
    outcome.seconds = time.perf_counter() - start
    print(
        json.dumps({"area": area, "seconds": round(outcome.seconds), **outcome.figures}), flush=True
    )
    return outcome


def headline_value(headline: Headline, runs: dict[str, AreaRun]) -> float | None:
    """The figure behind ``headline``, or ``None`` when its module did not give it."""
    value = runs[headline.area].figures.get(headline.figure) if headline.area in runs else None
    return None if value is None or math.isnan(value) else value


def summary(runs: dict[str, AreaRun]) -> dict[str, float | None]:
    return {h.key: headline_value(h, runs) for h in HEADLINES}


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def markdown_report(
    runs: dict[str, AreaRun],
    quick: bool,
    seconds: float,
    plots: dict[str, list[str]],
    pending: Sequence[str],
) -> str:
    machine = machine_info()
    lines = [
        "# thoughtbank benchmark report",
        "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by "
        f"`python -m benchmarks.run_all{' --quick' if quick else ''}` in {seconds / 60:.1f} min.",
        "Every ratio was measured in the same run as both of its terms.",
        *(
            [f"**Partial report**: still running or not reached: {', '.join(pending)}."]
            if pending
            else []
        ),
        "",
        "## Machine and settings",
        "",
        "| cores | CPU | memory | Python | platform | mode |",
        "|---|---|---|---|---|---|",
        f"| {machine['cores']} | {machine['cpu_model']} | {machine['memory_gib']} GiB | "
        f"{machine['python']} | {machine['platform']} | "
        f"{'quick (small sizes)' if quick else 'full'} |",
        "",
        "## Headline figures (`summary.json`)",
        "",
        "| key | value | what it compares | goal | source |",
        "|---|---|---|---|---|",
    ]
    values = summary(runs)
    lines += [
        f"| `{h.key}` | {_number(values[h.key])} | {h.meaning} | {h.goal} | "
        f"`bench_{h.area}` `{h.figure}` |"
        for h in HEADLINES
    ]
    for run in runs.values():
        lines += ["", f"## {run.area}", ""]
        if run.problem:
            lines.append(f"**Not measured**: {run.problem}.")
            continue
        lines += [
            f"`{run.module}` ran in {run.seconds:.0f} s.",
            "",
            "| figure | value |",
            "|---|---|",
        ]
        lines += [f"| `{name}` | {_number(value)} |" for name, value in run.figures.items()]
        lines += ["", *(f"![{run.area}]({name})" for name in plots.get(run.area, []))]
    return "\n".join(lines) + "\n"


def is_ratio(name: str) -> bool:
    return "ratio" in name or "_vs_" in name


def _save(figure: Any, out: Path, name: str) -> str:
    """Write ``figure`` as ``out/name`` and free it; the name, for the report."""
    import matplotlib.pyplot as plt

    figure.savefig(out / name, bbox_inches="tight", dpi=100)
    plt.close(figure)
    return name


def plot_ratios(area: str, figures: dict[str, float], out: Path) -> str | None:
    """Bar chart of an area's ratio figures (1.0 marked); the file name, or None if it has none."""
    import matplotlib.pyplot as plt

    ratios = {k: v for k, v in figures.items() if is_ratio(k) and not math.isnan(v)}
    if not ratios:
        return None
    figure, axes = plt.subplots(figsize=(7, 0.45 * len(ratios) + 1.2))
    axes.barh(list(ratios), list(ratios.values()), color="tab:blue")
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_xlabel("ratio to its ceiling or peer (measured in the same run)")
    axes.set_title(f"{area}: ratios")
    axes.invert_yaxis()
    return _save(figure, out, f"{area}_ratios.png")


def plot_serving(figures: dict[str, float], out: Path) -> str | None:
    """Served and in-process requests/s against clients, LangChain as a line."""
    import matplotlib.pyplot as plt

    clients = sorted(int(k.rsplit("_", 1)[1]) for k in figures if k.startswith("served_rps_"))
    if not clients:
        return None
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, prefix in (("served (gRPC)", "served_rps_"), ("in-process ceiling", "ceiling_rps_")):
        axes.plot(
            clients, [figures.get(f"{prefix}{c}", math.nan) for c in clients], "o-", label=label
        )
    if "langchain_rps" in figures:
        axes.axhline(figures["langchain_rps"], color="gray", linestyle="--", label="LangChain")
    axes.set_xscale("log", base=2)
    axes.set_xticks(clients, [str(c) for c in clients])
    axes.set_xlabel("concurrent clients")
    axes.set_ylabel("requests/s")
    axes.legend()
    return _save(figure, out, "serving_throughput.png")


def plot_feedback(figures: dict[str, float], out: Path) -> str | None:
    """Mean hidden usefulness of the served top 3 against outcomes recorded, beside
    similarity-only ranking and the oracle."""
    import matplotlib.pyplot as plt

    marks = sorted(int(k.rsplit("_", 1)[1]) for k in figures if k.startswith("usefulness_after_"))
    if not marks:
        return None
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, prefix in (("greedy", ""), ("Thompson sampling while learning", "explore_")):
        values = [figures.get(f"{prefix}usefulness_after_{m}", math.nan) for m in marks]
        axes.plot(marks, values, "o-", label=label)
    axes.axhline(figures["similarity_usefulness"], color="gray", linestyle="--", label="similarity")
    axes.axhline(figures["oracle_usefulness"], color="black", linestyle=":", label="oracle")
    axes.set_xlabel("outcomes recorded")
    axes.set_ylabel("mean hidden usefulness of the served top 3")
    axes.legend()
    return _save(figure, out, "feedback_learning.png")


def write_plots(runs: dict[str, AreaRun], out: Path) -> dict[str, list[str]]:
    """PNG plots per area (headless backend); area -> file names."""
    import matplotlib

    matplotlib.use("Agg")
    plots: dict[str, list[str]] = {}
    for area, run in runs.items():
        made = [plot_ratios(area, run.figures, out)]
        if area == "serving":
            made.append(plot_serving(run.figures, out))
        if area == "feedback":
            made.append(plot_feedback(run.figures, out))
        plots[area] = [name for name in made if name]
    return plots


def write_report(
    runs: dict[str, AreaRun], quick: bool, seconds: float, out: Path, pending: Sequence[str] = ()
) -> None:
    """REPORT.md, summary.json and the plots, all into ``out``; ``pending`` areas are named as
    missing, so that a run stopped half-way still leaves what it measured."""
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(runs, out)
    (out / "REPORT.md").write_text(markdown_report(runs, quick, seconds, plots, pending))
    (out / "summary.json").write_text(json.dumps(summary(runs), indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 3 minutes")
    parser.add_argument("--only", nargs="+", choices=AREAS, help="run only these areas")
    parser.add_argument("--out", type=Path, default=REPORT_DIR, help="report folder")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    areas = args.only or AREAS
    runs: dict[str, AreaRun] = {}
    for area in areas:
        runs[area] = run_area(area, args.quick)
        write_report(
            runs,
            args.quick,
            time.perf_counter() - start,
            args.out,
            pending=[a for a in areas if a not in runs],
        )
    print(
        f"== wrote {args.out / 'REPORT.md'} and summary.json in "
        f"{(time.perf_counter() - start) / 60:.1f} min"
    )
    for run in runs.values():
        if run.problem:
            print(f"   {run.area}: {run.problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
