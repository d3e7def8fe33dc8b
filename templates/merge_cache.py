"""The clusters of a finished near-duplicate merge, kept beside the journal for ``--resume``.

Embedding every template is the slowest phase after distilling (about 100 s on MMLU-Pro), so a
resumed job whose templates and threshold did not change reads the clusters back instead. The
key hashes the templates' ids in merge order (an id covers task, query, text and models) and the
threshold, so any change to the input invalidates it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

from thoughtbank.templates.merge import in_merge_order
from thoughtbank.templates.schema import ThoughtTemplate

MERGE_SUFFIX = ".merge"


def merge_cache_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + MERGE_SUFFIX)


def merge_key(templates: Sequence[ThoughtTemplate], threshold: float) -> str:
    ids = [t.id for t in in_merge_order(templates)]
    payload = json.dumps([ids, threshold])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_clusters(path: Path, key: str, count: int) -> list[list[int]] | None:
    """The clusters saved under ``key``; None when absent, stale or not a partition of
    ``count`` positions (a damaged file is recomputed, never trusted)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    clusters = saved.get("clusters")
    if not isinstance(clusters, list) or not all(isinstance(c, list) for c in clusters):
        return None
    if sorted(chain.from_iterable(clusters)) != list(range(count)):
        return None
    return clusters


def save_clusters(path: Path, key: str, clusters: Sequence[Sequence[int]]) -> None:
    """Written whole then renamed, so a kill leaves the old file or the new one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"key": key, "clusters": clusters}), encoding="utf-8")
    os.replace(partial, path)
