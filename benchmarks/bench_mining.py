"""Mining throughput: the LLM path against its ideal, and the extractive path on the real logs.

LLM path: a fake chat model that takes 200 ms a call (like a remote model, no CPU) distils
synthetic groups at 1, 8 and 32 workers. The ideal is ``workers / 0.2 s`` templates per second;
the ratio shows what the job's own work (reading, spooling, journaling, writing) costs on top.

Ray engine: the same fake at 4, 16 and 64 concurrent calls on a local Ray instance (a few
actors, each with threads), against the ideal and against the local engine at the same
concurrency. Each job runs at two sizes: the whole-job rate includes Ray's start-up (the
instance, the actors), the steady rate is the difference of the two (extra groups / extra
seconds), which is what a long job sees. Embedding on a Ray actor pool is measured the same
way against ``build_index`` on the local embedder.

Extractive path: the whole job (``--no-merge``) on every file in ``../shared/data``, in groups
per second, beside the rate at which the same files are merely read and validated (the job
cannot be faster than reading its input).

Usage: ``python -m benchmarks.bench_mining [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from itertools import cycle
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult

from benchmarks.bench_index import benchmark_texts
from benchmarks.common import ratio, timed
from thoughtbank.index import Embedder, build_index, load_embedder
from thoughtbank.templates import (
    DistillEngine,
    Distiller,
    DistillerSpec,
    ExtractiveDistiller,
    MiningOptions,
    RejectSink,
    ThoughtTemplate,
    mine_templates,
)
from thoughtbank.templates.chat import CallPolicy, ChatDistiller
from thoughtbank.templates.readers import iter_log_records

CALL_SECONDS = 0.2
WORKER_COUNTS = (1, 8, 32)
#: Seconds of ideal distilling per worker count: long enough that the job's fixed costs
#: (spooling, writing the output: about 0.3 s) do not hide the steady rate.
IDEAL_SECONDS = {True: 1.0, False: 10.0}
SHARED_DATA = Path(
    os.environ.get(
        "THOUGHTBANK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)
QUICK_SHARED_FILES = ("gsm8k_6_models.jsonl.gz",)
#: Concurrent calls on the Ray engine, and the actors that share them.
RAY_ACTORS = {4: 2, 16: 4, 64: 4}
RAY_GOAL_AT_64 = 0.85
RAY_EMBED_TEXTS = {True: 512, False: 4096}
RAY_EMBED_GOAL = 0.8
#: Ray's workers import the fake by this name: the repository root goes on their PYTHONPATH.
SLEEPING_MODEL = "python:benchmarks.bench_mining:sleeping_model"
REPO_ROOT = Path(__file__).resolve().parents[1]
NO_RETRIES = CallPolicy(timeout_s=30, retries=0)
TEMPLATE_REPLY = json.dumps(
    {
        "task_summary": "Solve a word problem about quantities.",
        "reasoning_steps": ["List the given quantities.", "Combine them with the right operation."],
        "answer_format": "End with '#### <number>'.",
    }
)


class SleepingFakeChatModel(GenericFakeChatModel):
    """langchain-core's fake chat model with a fixed latency per call."""

    delay_s: float = CALL_SECONDS

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.delay_s)
        return super()._generate(messages, stop, run_manager, **kwargs)


def sleeping_model() -> BaseChatModel:
    """The fake as a ``python:`` factory, built inside each Ray actor."""
    return SleepingFakeChatModel(messages=cycle([AIMessage(TEMPLATE_REPLY)]))


def synthetic_log(path: Path, groups: int) -> Path:
    """``groups`` queries, each answered by three models (one wrong)."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(groups):
            for model, performance in (("a", 1.0), ("b", 1.0), ("c", 0.0)):
                handle.write(
                    json.dumps(
                        {
                            "task_name": "synthetic",
                            "query_id": f"q{i}",
                            "llm": model,
                            "query": f"Query {i}: a box holds {i} pens; how many in {i + 1} boxes?",
                            "response": "Multiply pens per box by boxes.\n#### answer",
                            "performance": performance,
                        }
                    )
                    + "\n"
                )
    return path


def mine_timed(engine: Distiller | DistillEngine, workers: int, groups: int, folder: Path) -> float:
    """Seconds to mine ``groups`` synthetic groups with ``workers`` concurrent calls."""
    log = synthetic_log(folder / f"log-{workers}-{groups}.jsonl", groups)
    out = folder / f"out-{engine.name}-{workers}-{groups}.jsonl"
    seconds, summary = timed(
        lambda: mine_templates([log], out, engine, MiningOptions(workers=workers))
    )
    if summary.templates != groups:
        raise RuntimeError(f"{groups - summary.templates} of {groups} groups failed")
    return seconds


def ideal_groups(workers: int, quick: bool) -> int:
    return int(workers / CALL_SECONDS * IDEAL_SECONDS[quick])


def chat_templates_per_second(workers: int, quick: bool, folder: Path) -> float:
    distiller = ChatDistiller(sleeping_model(), "sleeping-fake", NO_RETRIES)
    groups = ideal_groups(workers, quick)
    return groups / mine_timed(distiller, workers, groups, folder)


def whole_and_steady(
    run_size: Callable[[int], float], size: int, small: int
) -> tuple[float, float]:
    """(items/s of a ``size`` run, items/s of its part beyond a ``small`` run)."""
    small_s, seconds = run_size(small), run_size(size)
    return size / seconds, ratio(size - small, seconds - small_s)


def ray_mining_figures(quick: bool, folder: Path) -> dict[str, float]:
    from thoughtbank.templates.ray_engine import RayEngine

    figures: dict[str, float] = {}
    for workers, actors in RAY_ACTORS.items():
        engine = RayEngine(DistillerSpec(SLEEPING_MODEL, NO_RETRIES), actors=actors)
        groups, ideal = ideal_groups(workers, quick), workers / CALL_SECONDS
        whole, steady = whole_and_steady(
            lambda n, w=workers, e=engine: mine_timed(e, w, n, folder), 3 * groups, groups
        )
        local = chat_templates_per_second(workers, quick, folder)
        figures |= {
            f"ray_templates_per_s_{workers}": whole,
            f"ray_steady_per_s_{workers}": steady,
            f"ray_steady_vs_ideal_{workers}": ratio(steady, ideal),
            f"ray_whole_vs_ideal_{workers}": ratio(whole, ideal),
            f"local_templates_per_s_{workers}": local,
            f"ray_steady_vs_local_{workers}": ratio(steady, local),
        }
    return figures


def embedding_templates(count: int) -> list[ThoughtTemplate]:
    return [
        ThoughtTemplate(
            id=f"e{i}", task="bench", text="Task: x", source_query=text, source_models=("m",)
        )
        for i, text in enumerate(benchmark_texts(count))
    ]


def build_timed(embedder: Embedder, count: int, folder: Path) -> float:
    templates = embedding_templates(count)
    seconds, _ = timed(lambda: build_index(templates, folder / f"{count}", embedder))
    return seconds


def ray_embedding_figures(quick: bool, folder: Path) -> dict[str, float]:
    from thoughtbank.index.ray_embedder import RayPoolEmbedder

    local = load_embedder()
    local.encode(["warm the model up"])
    count = RAY_EMBED_TEXTS[quick]
    local_rate = count / build_timed(local, count, folder / "local")
    whole, steady = whole_and_steady(
        lambda n: build_timed(RayPoolEmbedder(local), n, folder / "ray"), count, count // 8
    )
    return {
        "embed_local_per_s": local_rate,
        "embed_ray_per_s": whole,
        "embed_ray_steady_per_s": steady,
        "embed_ray_whole_vs_local": ratio(whole, local_rate),
        "embed_ray_steady_vs_local": ratio(steady, local_rate),
    }


def ray_figures(quick: bool, folder: Path) -> dict[str, float]:
    try:
        import ray  # noqa: F401
    except ImportError:
        print("the ray extra is not installed: Ray figures skipped", file=sys.stderr)
        return {}
    paths = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return ray_mining_figures(quick, folder) | ray_embedding_figures(quick, folder)


def shared_logs(quick: bool) -> list[Path]:
    if not SHARED_DATA.is_dir():
        return []
    if quick:
        return [SHARED_DATA / name for name in QUICK_SHARED_FILES]
    return sorted(p for p in SHARED_DATA.iterdir() if p.name.endswith((".jsonl.gz", ".csv")))


def extractive_figures(quick: bool, folder: Path) -> dict[str, float]:
    logs = shared_logs(quick)
    if not logs:
        print(f"{SHARED_DATA} is absent: extractive figures skipped", file=sys.stderr)
        return {}
    read_seconds, rows = timed(lambda: sum(1 for _ in iter_log_records(logs, RejectSink())))
    seconds, summary = timed(
        lambda: mine_templates(
            logs, folder / "extractive.jsonl", ExtractiveDistiller(), MiningOptions(workers=2)
        )
    )
    return {
        "extractive_groups": float(summary.groups),
        "extractive_rows": float(summary.rows_read),
        "extractive_groups_per_s": summary.groups / seconds,
        "extractive_rows_per_s": summary.rows_read / seconds,
        "read_only_rows_per_s": rows / read_seconds,
        "extractive_vs_read_only": ratio(read_seconds, seconds),
    }


def run(quick: bool) -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mining-") as tmp:
        folder = Path(tmp)
        for workers in WORKER_COUNTS:
            rate = chat_templates_per_second(workers, quick, folder)
            figures[f"templates_per_s_{workers}"] = rate
            figures[f"ideal_per_s_{workers}"] = workers / CALL_SECONDS
            figures[f"ratio_to_ideal_{workers}"] = ratio(rate, workers / CALL_SECONDS)
        figures.update(ray_figures(quick, folder))
        figures.update(extractive_figures(quick, folder))
    return figures


def report(figures: dict[str, float]) -> None:
    print(f"chat distiller, fake model at {CALL_SECONDS * 1000:.0f} ms a call:")
    for workers in WORKER_COUNTS:
        print(
            f"  {workers:>2} workers: {figures[f'templates_per_s_{workers}']:7.1f} templates/s"
            f" vs ideal {figures[f'ideal_per_s_{workers}']:6.1f}:"
            f" {figures[f'ratio_to_ideal_{workers}']:.2f}x (goal >= 0.9x)"
        )
    if "ray_steady_per_s_64" in figures:
        report_ray(figures)
    if "extractive_groups_per_s" in figures:
        print(
            f"extractive distiller on {figures['extractive_rows']:.0f} rows, "
            f"{figures['extractive_groups']:.0f} groups of {SHARED_DATA}:"
        )
        print(
            f"  {figures['extractive_groups_per_s']:.0f} groups/s, "
            f"{figures['extractive_rows_per_s']:.0f} rows/s vs reading alone "
            f"{figures['read_only_rows_per_s']:.0f} rows/s: "
            f"{figures['extractive_vs_read_only']:.2f}x"
        )


def report_ray(figures: dict[str, float]) -> None:
    print("ray engine on a local instance, same fake (steady: beyond start-up; whole: the job):")
    for workers, actors in RAY_ACTORS.items():
        goal = f" (goal >= {RAY_GOAL_AT_64}x)" if workers == 64 else ""
        print(
            f"  {workers:>2} calls ({actors} actors): steady"
            f" {figures[f'ray_steady_per_s_{workers}']:6.1f}/s ="
            f" {figures[f'ray_steady_vs_ideal_{workers}']:.2f}x ideal{goal},"
            f" whole job {figures[f'ray_whole_vs_ideal_{workers}']:.2f}x;"
            f" local engine {figures[f'local_templates_per_s_{workers}']:6.1f}/s,"
            f" ray steady/local {figures[f'ray_steady_vs_local_{workers}']:.2f}x"
        )
    print(
        f"  embedding: ray pool {figures['embed_ray_steady_per_s']:.0f} templates/s steady,"
        f" {figures['embed_ray_per_s']:.0f}/s whole build vs local build"
        f" {figures['embed_local_per_s']:.0f}/s: {figures['embed_ray_steady_vs_local']:.2f}x"
        f" steady, {figures['embed_ray_whole_vs_local']:.2f}x whole (goal >= {RAY_EMBED_GOAL}x)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 s of ideal distilling per worker count; one shared log file",
    )
    report(run(parser.parse_args(argv).quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
