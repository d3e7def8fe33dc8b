"""Small FusionBench-schema logs written on the fly for the mining tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any


def row(
    query: str = "Tom has 3 apples and buys 4 more. How many apples does Tom have?",
    llm: str = "model-a",
    performance: Any = 1.0,
    **extra: Any,
) -> dict[str, Any]:
    """One valid log row; keyword arguments override or add columns."""
    return {
        "task_name": "gsm8k",
        "query_id": "q1",
        "query": query,
        "llm": llm,
        "response": "Tom starts with 3 apples.\nHe buys 4 more, so 3 + 4 = 7.\n#### 7",
        "performance": performance,
        "cost": 0.001,
        "llm_judge": None,
        "ground_truth": "7",
        **extra,
    }


def query_rows(
    index: int, models: tuple[str, ...] = ("model-a", "model-b", "model-c"), task: str = "gsm8k"
) -> list[dict[str, Any]]:
    """Rows of every model for query ``index``; the last model fails."""
    query = f"Sam packs {index} boxes with {index + 2} pens each. How many pens are packed?"
    answer = str(index * (index + 2))
    return [
        row(
            query,
            llm,
            0.0 if i == len(models) - 1 else 1.0,
            task_name=task,
            query_id=f"q{index}",
            ground_truth=answer,
            cost=0.001 * (i + 1),
            response=f"Each box holds {index + 2} pens.\nThere are {index} boxes.\n"
            f"So {index} * {index + 2} pens are packed.\n#### {answer}",
        )
        for i, llm in enumerate(models)
    ]


def many_queries(count: int, task: str = "gsm8k") -> list[dict[str, Any]]:
    return [r for i in range(1, count + 1) for r in query_rows(i, task=task)]


def write_jsonl(path: Path, rows: list[Any], compress: bool = False) -> Path:
    """One JSON value per line (any value: tests write bad rows too)."""
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def template_set(path: Path) -> set[str]:
    """Templates of an output file without their creation time, as comparable JSON lines."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        data.pop("created_at")
        found.add(json.dumps(data, sort_keys=True))
    return found
