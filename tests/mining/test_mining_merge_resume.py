"""The near-duplicate merge: progress while embedding, and ``--resume`` reusing its clusters."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from mining_logs import many_queries, write_jsonl

from thoughtbank.templates import ExtractiveDistiller, MiningOptions, mine_templates
from thoughtbank.templates import merge as merge_module
from thoughtbank.templates.merge_cache import merge_cache_path


class CountingEmbed:
    """Equal texts get equal vectors (so many_queries' templates merge); counts its calls."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.sizes.append(len(texts))
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
        return np.stack([np.random.default_rng(s).standard_normal(16) for s in seeds])


def refuse_to_embed(texts: Sequence[str]) -> np.ndarray:
    raise AssertionError("a resumed job embedded its templates again")


@pytest.fixture
def log(tmp_path: Path) -> Path:
    rows = many_queries(4) + many_queries(2, task="other_task")
    return write_jsonl(tmp_path / "log.jsonl", rows)


def mine(log: Path, out: Path, embed, **options) -> tuple[int, int, str]:
    summary = mine_templates([log], out, ExtractiveDistiller(), MiningOptions(**options), embed)
    return summary.templates, summary.merged, out.read_text()


def test_resume_reads_the_finished_merge_back(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "templates.jsonl"
    first = mine(log, out, CountingEmbed())
    assert first[:2] == (2, 4) and merge_cache_path(out).is_file()
    assert mine(log, out, refuse_to_embed, resume=True) == first


def test_a_changed_input_or_a_fresh_run_merges_again(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "templates.jsonl"
    mine(log, out, CountingEmbed())
    for options in ({"resume": True, "merge_threshold": 0.5}, {}):
        embed = CountingEmbed()
        mine(log, out, embed, **options)
        assert embed.sizes, options
    write_jsonl(log, many_queries(5))
    embed = CountingEmbed()
    assert mine(log, out, embed)[:2] == (1, 4) and embed.sizes


def test_a_damaged_merge_file_is_recomputed(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "templates.jsonl"
    first = mine(log, out, CountingEmbed())
    cache = merge_cache_path(out)
    for damage in ("{not json", cache.read_text().replace("[0", "[9", 1)):
        cache.write_text(damage)
        embed = CountingEmbed()
        assert mine(log, out, embed, resume=True) == first and embed.sizes


def test_merge_embeds_in_chunks_under_a_progress_bar(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(merge_module, "EMBED_CHUNK", 3)
    embed = CountingEmbed()
    mine(log, tmp_path / "shown.jsonl", embed, progress=True)
    assert embed.sizes == [3, 1, 2]  # gsm8k (4 templates), then other_task (2)
    assert "merging near-duplicates" in capsys.readouterr().err
    mine(log, tmp_path / "quiet.jsonl", CountingEmbed())
    assert capsys.readouterr().err == ""
