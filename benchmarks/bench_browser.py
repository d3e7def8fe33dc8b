"""Template browser benchmark: server-side render time of each page at 100k templates (10k with
``--quick``), against the goal of 200 ms, and a screenshot of each page.

The bank is synthesised from the demo's real mined templates, each copied with a numbered
variant of its query and text, its vector the original's plus noise (no 100k texts embedded);
every seventh copy carries a flag and a few thousand outcomes are recorded, so that the flag,
uses and lift orders have something to sort. The browser runs as ``browse`` runs it (uvicorn on
a loopback port, in a thread); each figure is the app's own ``Server-Timing`` duration, parsing
to HTML, median and p95 over requests that vary what they ask, so that the listing cache serves
only what it would serve a person paging on. The first page of the run, which builds the
catalog (search texts, orders), is reported on its own. Screenshots go to
``benchmarks/report/browser-*.png`` (skipped, and said, where Chromium is absent).

Usage: ``python -m benchmarks.bench_browser [--quick]``
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np

from benchmarks.bench_serving import PrecomputedEmbedder
from benchmarks.chromium import chromium, missing
from benchmarks.common import REPORT_DIR, percentile_ms, run_cli
from thoughtbank.demo import demo_logs_path
from thoughtbank.index import Embedder, build_index, load_embedder
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.retriever.serving.browser.app import Shelf
from thoughtbank.retriever.serving.browser.run import BrowserServer
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.schema import OutcomeRecord, ThoughtTemplate, template_id
from thoughtbank.templates import ExtractiveDistiller, mine_templates, read_templates

GOAL_MS = 200.0
REQUESTS = 40
QUICK_REQUESTS = 15
NOISE = 0.2
OUTCOMES = 5_000
FLAGGED_EVERY = 7
QUERIES = (
    "How many apples are left after giving some away?",
    "What is the acceleration of a 3 kg mass pushed by a 12 N force?",
    "Write a Python function to count the words in a sentence.",
    "Where would you store ice cream to keep it frozen?",
)
_TIMING = re.compile(r"app;dur=([0-9.]+)")


def real_templates(folder: Path) -> list[ThoughtTemplate]:
    out = folder / "templates.jsonl"
    mine_templates([demo_logs_path()], out, ExtractiveDistiller())
    return list(read_templates(out))


def synthetic_bank(size: int, folder: Path, embedder: Embedder) -> Path:
    """An index of ``size`` variants of the demo's templates, with outcomes for some."""
    seeds = real_templates(folder)
    seed_vectors = embedder.encode([t.source_query for t in seeds])
    rng = np.random.default_rng(0)
    templates, vectors = [], {}
    for i in range(size):
        seed = seeds[i % len(seeds)]
        query = f"{seed.source_query} (variant {i})"
        text = f"{seed.text}\nVariant {i}."
        vector = seed_vectors[i % len(seeds)] + NOISE * rng.standard_normal(embedder.dimension) / (
            np.sqrt(embedder.dimension)
        )
        vectors[query] = (vector / np.linalg.norm(vector)).astype(np.float32)
        templates.append(
            replace(
                seed,
                id=template_id(seed.task, query, text, seed.source_models),
                source_query=query,
                text=text,
                flags=("leakage",) if i % FLAGGED_EVERY == 0 else (),
            )
        )
    index_dir = folder / "index"
    build_index(templates, index_dir, PrecomputedEmbedder(vectors, embedder))
    _record_outcomes(index_dir, [t.id for t in templates])
    return index_dir


def _record_outcomes(index_dir: Path, ids: Sequence[str]) -> None:
    chooser = random.Random(0)
    records = [
        OutcomeRecord(f"bench-{n}", (chooser.choice(ids[:2_000]),), chooser.random())
        for n in range(OUTCOMES)
    ]
    with OutcomeStore(index_dir) as store:
        store.record(records)


def page_urls(engine: RetrievalEngine, requests: int) -> dict[str, list[str]]:
    """Per page kind, ``requests`` URLs that vary what they ask."""
    templates = engine.index.ordered_templates()
    tasks = sorted(engine.index.manifest.task_counts)
    last_page = -(-engine.size // 50)
    words = sorted({w.lower() for t in templates[:32] for w in re.findall(r"[a-z]{5,}", t.text)})
    picks = random.Random(1)
    sorts = ("task", "length", "flags", "uses", "lift")
    return {
        "overview": ["/"] * requests,
        "list_first_page": ["/templates"] * requests,
        "list_deep_page": [f"/templates?page={last_page - n}" for n in range(requests)],
        "list_search": [f"/templates?q={picks.choice(words)}+{n}" for n in range(requests)],
        "list_task_filter": [
            f"/templates?task={tasks[n % len(tasks)]}&sort={sorts[n % len(sorts)]}"
            for n in range(requests)
        ],
        "list_sorted_by_lift": [f"/templates?sort=lift&page={n + 1}" for n in range(requests)],
        "template": [f"/templates/{picks.choice(templates).id}" for _ in range(requests)],
        "query": [f"/query?q={QUERIES[n % len(QUERIES)]}&k=5" for n in range(requests)],
    }


def server_ms(client: httpx.Client, url: str) -> float:
    response = client.get(url)
    response.raise_for_status()
    match = _TIMING.search(response.headers["server-timing"])
    assert match is not None
    return float(match[1])


def measure(base: str, urls: dict[str, list[str]]) -> dict[str, float]:
    figures: dict[str, float] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        figures["first_page_ms"] = server_ms(client, "/templates")  # builds the catalog
        server_ms(client, "/query?q=warm-up")  # the model's first call
        for page, each in urls.items():
            taken = [server_ms(client, url) / 1000 for url in each]
            figures[f"{page}_p50_ms"] = percentile_ms(taken, 50)
            figures[f"{page}_p95_ms"] = percentile_ms(taken, 95)
    figures["worst_p95_vs_goal"] = max(v for k, v in figures.items() if k.endswith("_p95_ms")) / (
        GOAL_MS
    )
    return figures


def screenshots(base: str, engine: RetrievalEngine) -> int:
    """A PNG of each page under ``REPORT_DIR``; how many were written (0 without Chromium)."""
    why = missing()
    if why is not None:
        print(f"no screenshots: {why}")
        return 0
    some_id = engine.index.ordered_templates()[1].id
    pages = {
        "overview": "/",
        "templates": "/templates?q=apples&sort=lift",
        "template": f"/templates/{some_id}",
        "query": f"/query?q={QUERIES[0]}&k=3",
    }
    REPORT_DIR.mkdir(exist_ok=True)
    with chromium() as driver:
        for name, url in pages.items():
            driver.get(base + url)
            driver.save_screenshot(str(REPORT_DIR / f"browser-{name}.png"))
    return len(pages)


def run(quick: bool) -> dict[str, float]:
    size = 10_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp:
        embedder = load_embedder()
        engine = RetrievalEngine.open(synthetic_bank(size, Path(tmp), embedder), embedder)
        with BrowserServer(Shelf(lambda: {"default": engine}), "127.0.0.1", 0) as server:
            base = server.url.rstrip("/")
            figures = measure(base, page_urls(engine, QUICK_REQUESTS if quick else REQUESTS))
            figures["screenshots"] = screenshots(base, engine)
    return {"templates": size, **figures}


def report(figures: dict[str, float]) -> None:
    print(f"{figures['templates']:.0f} templates; server-side ms per page (goal < {GOAL_MS:.0f})")
    print(f"  first page of the run (builds the catalog): {figures['first_page_ms']:.1f}")
    for name in figures:
        if name.endswith("_p50_ms"):
            page = name.removesuffix("_p50_ms")
            print(
                f"  {page:<22} median {figures[name]:7.1f}   p95 {figures[page + '_p95_ms']:7.1f}"
            )
    worst = figures["worst_p95_vs_goal"]
    print(f"worst p95 / goal: {worst:.2f}; screenshots: {figures['screenshots']:.0f}")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(__doc__ or "", run, report, argv)


if __name__ == "__main__":
    sys.exit(main())
