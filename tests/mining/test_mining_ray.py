"""``--engine ray`` in this process: a real local Ray instance (``ray.init(num_cpus=2)``).

The same logs mined on the local and the Ray engine give the same templates, rejects and
summary; a rate limit holds across actors; embedding on an actor pool gives the local vectors.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mining_logs import many_queries, row, template_set, write_jsonl

from thoughtbank.templates import DistillerSpec, MiningOptions, mine_templates
from thoughtbank.templates.chat import CallPolicy

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
from thoughtbank.index.ray_embedder import RayPoolEmbedder  # noqa: E402
from thoughtbank.templates.ray_engine import RayEngine  # noqa: E402

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
PROMPT_HASH = "python:mining_fakes:prompt_hash_model"


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One Ray instance for the module; its workers import the fakes from this folder."""
    python_path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 2**20,
        runtime_env={"env_vars": {"PYTHONPATH": python_path, "HF_HUB_OFFLINE": "1"}},
    )
    # Work starts once every actor is up, so these small jobs spread over the whole pool
    # (the first actor alone would finish some of them before the second is ready).
    ray.data.DataContext.get_current().wait_for_min_actors_s = 60
    try:
        yield
    finally:
        ray.shutdown()


def log_with_bad_rows(folder: Path) -> Path:
    rows: list[object] = [*many_queries(40), "{not json", row(performance="high")]
    return write_jsonl(folder / "log.jsonl", rows)


def mine_both(folder: Path, spec: DistillerSpec, options: MiningOptions) -> tuple[dict, dict]:
    log = log_with_bad_rows(folder)
    local = mine_templates([log], folder / "local" / "t.jsonl", spec.build(), options)
    on_ray = mine_templates([log], folder / "ray" / "t.jsonl", RayEngine(spec), options)
    return local.as_dict(), on_ray.as_dict()


@pytest.mark.parametrize(
    "spec",
    [DistillerSpec(), DistillerSpec(PROMPT_HASH, CallPolicy(timeout_s=30, retries=0))],
    ids=["extractive", "fake-chat"],
)
def test_ray_engine_mines_what_the_local_engine_mines(tmp_path: Path, spec: DistillerSpec) -> None:
    local, on_ray = mine_both(tmp_path, spec, MiningOptions(workers=4, pitfalls=True))

    assert template_set(tmp_path / "ray" / "t.jsonl") == template_set(
        tmp_path / "local" / "t.jsonl"
    )
    assert len(template_set(tmp_path / "ray" / "t.jsonl")) == 40
    rejects = [(tmp_path / side / "t.jsonl.rejects").read_text() for side in ("local", "ray")]
    assert rejects[0] == rejects[1] and len(rejects[0].splitlines()) == 2
    per_actor = on_ray.pop("groups_per_actor")
    assert local == on_ray
    assert sum(per_actor.values()) == 40 and len(per_actor) == 2
    if spec.llm:
        assert on_ray["llm_calls"] == 40 and on_ray["input_tokens"] > 0


def test_resume_crosses_engines(tmp_path: Path) -> None:
    """A journal started on Ray is finished locally and the other way round: one job."""
    spec = DistillerSpec(PROMPT_HASH, CallPolicy(timeout_s=30, retries=0))
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(30))
    out = tmp_path / "t.jsonl"
    mine_templates([log], out, RayEngine(spec), MiningOptions(workers=2))
    resumed = mine_templates([log], out, spec.build(), MiningOptions(workers=2, resume=True))
    assert resumed.groups_resumed == 30 and resumed.llm_calls == 0
    assert len(template_set(out)) == 30


def test_rate_limit_holds_for_the_whole_cluster(tmp_path: Path) -> None:
    """Two actors of 4 threads each start at most 20 calls a second between them."""
    rate, groups = 20.0, 30
    spec = DistillerSpec(PROMPT_HASH, CallPolicy(timeout_s=30, retries=0, requests_per_second=rate))
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(groups))
    engine = RayEngine(spec, actors=2)
    started = time.monotonic()
    summary = mine_templates([log], tmp_path / "t.jsonl", engine, MiningOptions(workers=8))
    elapsed = time.monotonic() - started
    assert summary.templates == groups and len(summary.groups_per_actor) == 2
    # The first call goes at once, each later one a 1/rate slot after the one before.
    assert elapsed >= (groups - 1) / rate


def test_actor_pool_embeds_the_local_vectors(embedder) -> None:
    texts = [f"Sam packs {i} boxes of pens; how many pens in all?" for i in range(300)]
    pooled = RayPoolEmbedder(embedder, actors=2)
    vectors = pooled.encode(texts)
    assert vectors.shape == (300, embedder.dimension)
    assert np.min(np.sum(vectors * embedder.encode(texts), axis=1)) > 0.999
    assert pooled.fingerprint() == embedder.fingerprint()


def test_summary_json_names_the_actors(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(5))
    summary = mine_templates([log], tmp_path / "t.jsonl", RayEngine(DistillerSpec()))
    per_actor = json.loads(json.dumps(summary.as_dict()))["groups_per_actor"]
    assert sum(per_actor.values()) == 5
    assert all(":" in actor for actor in per_actor)
