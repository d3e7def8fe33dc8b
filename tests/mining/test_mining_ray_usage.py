"""The Ray engine's LLM usage when an actor's batches reach the driver out of order."""

from __future__ import annotations

import numpy as np
import pytest

from thoughtbank.templates import DistillerSpec
from thoughtbank.templates.distill import LLMUsage

pytest.importorskip("ray", reason="the ray extra is not installed")
from thoughtbank.templates.ray_engine import RayEngine


def batch(actor: str, usage: LLMUsage, groups: int = 2) -> dict[str, np.ndarray]:
    """What a ``GroupMiner`` yields: no entries needed here, only who reported what."""
    usages = np.empty(groups, dtype=object)
    usages[:] = [usage] * groups
    return {
        "entry": np.empty(0, dtype=object),
        "actor": np.array([actor] * groups),
        "usage": usages,
    }


def test_a_late_batch_does_not_undo_its_actors_later_report() -> None:
    engine = RayEngine(DistillerSpec())
    first, second = LLMUsage(4, 700, 80), LLMUsage(8, 1500, 170)
    for actor_batch in (batch("a:1", second), batch("a:1", first), batch("b:2", first)):
        engine._take(actor_batch)
    assert engine.usage() == LLMUsage(12, 2200, 250)


def test_tokens_stay_unknown_where_no_actor_reports_them() -> None:
    engine = RayEngine(DistillerSpec())
    engine._take(batch("a:1", LLMUsage(3)))
    engine._take(batch("a:1", LLMUsage(1)))
    assert engine.usage() == LLMUsage(3, None, None)
