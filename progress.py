"""Progress bars on stderr for the phases that take more than a couple of seconds.

The commands decide ``show`` (a terminal on stderr and no ``--no-progress``), so output that is
piped or captured stays free of bars.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

Item = TypeVar("Item")


def progress_bar(
    desc: str, unit: str, show: bool, total: int | None = None, initial: int = 0
) -> tqdm[Any]:
    """A bar to ``update`` by hand (``with progress_bar(...) as bar``)."""
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=f" {unit}",
        file=sys.stderr,
        disable=not show,
    )


def with_progress(items: Iterable[Item], desc: str, unit: str, show: bool) -> Iterable[Item]:
    """``items`` unchanged, counted on a bar while they are consumed."""
    return tqdm(items, desc=desc, unit=f" {unit}", file=sys.stderr, disable=not show)
