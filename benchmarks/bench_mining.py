"""Mining throughput: the LLM path against its ideal, and the extractive path on the real logs.

LLM path: a fake chat model that takes 200 ms a call (like a remote model, no CPU) distils
synthetic groups at 1, 8 and 32 workers. The ideal is ``workers / 0.2 s`` templates per second;
the ratio shows what the job's own work (reading, spooling, journaling, writing) costs on top.

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
from collections.abc import Sequence
from itertools import cycle
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult

from benchmarks.common import ratio, timed
from thoughtbank.templates import ExtractiveDistiller, MiningOptions, RejectSink, mine_templates
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


def chat_templates_per_second(workers: int, quick: bool, folder: Path) -> float:
    groups = int(workers / CALL_SECONDS * IDEAL_SECONDS[quick])
    log = synthetic_log(folder / f"log-{workers}.jsonl", groups)
    model = SleepingFakeChatModel(messages=cycle([AIMessage(TEMPLATE_REPLY)]))
    distiller = ChatDistiller(model, "sleeping-fake", CallPolicy(timeout_s=30, retries=0))
    seconds, summary = timed(
        lambda: mine_templates(
            [log], folder / f"out-{workers}.jsonl", distiller, MiningOptions(workers=workers)
        )
    )
    if summary.templates != groups:
        raise RuntimeError(f"{groups - summary.templates} of {groups} groups failed")
    return summary.templates / seconds


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
