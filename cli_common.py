"""Argument types shared by the stages' command modules."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def column_map(text: str) -> dict[str, str]:
    """``query=prompt,llm=model`` -> {"query": "prompt", "llm": "model"}."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise argparse.ArgumentTypeError(f"expected NAME=COLUMN[,NAME=COLUMN...], got {text!r}")
    return {name.strip(): column.strip() for name, column in pairs}
