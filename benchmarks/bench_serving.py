"""Serving benchmark: ``Retrieve`` over gRPC at 1, 8 and 32 concurrent clients.

Each served figure is printed beside, measured in the same run:

* the in-process ceiling: ``encode(batch)`` + ``index.search(batch)`` at the same batch size as
  the number of clients, with no gRPC, no batching wait and no conversions;
* LangChain's ``SemanticSimilarityExampleSelector`` over a LangChain FAISS vectorstore of the
  same vectors, in-process, one query at a time (the peer a user would otherwise pick);
* at 1 client, where the served p50 is judged, its parts: an in-process
  ``RetrievalEngine.retrieve`` (the served path's own work, without gRPC) and a no-op gRPC
  call sent after as long an idle gap as a request computes.

Each level runs in alternating rounds (ceiling, served, ceiling, served, ...) and pools them, so
a drift of the machine's speed during the run (a shared VM's is 10-30% over seconds to minutes)
lands on both terms of a ratio instead of on one. The 1-client level, a latency ratio, uses
many short rounds; the throughput levels use a few longer ones, since each round starts with
the closed loop filling up.

The default (fast) embedding backend gets its own index, server and in-process ceiling, at 1
and 32 clients: its served rate against torch fp32's ceiling and its own, and its 1-client p50
against torch fp32's served p50 and against its own retriever plus an idle round trip.

Fairness: the p99 of one client's single Retrieves while 32 other clients send RetrieveBatch of
1,000 queries each, beside its p99 without them, in alternating rounds of the same run. The
batches come from a process of their own, so that parsing their answers does not delay the
single client's.

The index is synthetic but of realistic size (10k templates with ``--quick``, else 100k): the
template vectors are the bundled model's embeddings of a few real questions plus noise, so
building it costs seconds instead of embedding 100k texts, while queries are embedded for real.
The load generator is a separate process of grpc.aio clients, so on 2 cores it competes with
the server as little as a client can.

Usage: ``python -m benchmarks.bench_serving [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from benchmarks.common import LOAD_QUERIES, percentile_ms, ratio
from thoughtbank.index import (
    Embedder,
    LoadedIndex,
    TorchEmbedder,
    build_index,
    load_embedder,
    load_index,
)
from thoughtbank.retriever.serving.engine import WARM_UP_BATCH_SIZES, RetrievalEngine
from thoughtbank.retriever.types import RetrievalQuery
from thoughtbank.templates import ThoughtTemplate
from thoughtbank.templates.schema import template_id

T = TypeVar("T")
CONCURRENCY = (1, 8, 32)
ROUNDS = {1: 10, 8: 3, 32: 3}  # per number of clients
SEED_QUESTIONS = (
    *LOAD_QUERIES,
    "Solve for x: 3x + 7 = 22.",
    "Which of these is a mammal: shark, dolphin, trout or eel?",
)
TASKS = ("gsm8k", "mmlu_pro/physics", "commonsense_qa", "mbpp")
NOISE = 0.35
K = 3
BATCH_CLIENTS = 32  # fairness: callers sending RetrieveBatch beside one sending Retrieve
BATCH_QUERIES = 1_000
FAIR_ROUNDS = 3


def load_queries(count: int) -> list[str]:
    """Distinct queries (so no cache helps), shaped like the seed questions."""
    return [f"{SEED_QUESTIONS[i % len(SEED_QUESTIONS)]} (case {i})" for i in range(count)]


class PrecomputedEmbedder(Embedder):
    """``model``, except for texts whose vectors were given: those are looked up.

    Lets ``build_index`` store synthetic vectors while the manifest's fingerprint (computed
    from the model's own probe embeddings) and backend stay those of the real model the
    server loads.
    """

    def __init__(self, vectors: dict[str, np.ndarray], model: Embedder) -> None:
        super().__init__(model.model_id, model.precision)
        self.backend = model.backend
        self._vectors = vectors
        self._model = model

    @property
    def dimension(self) -> int:
        return self._model.dimension

    @property
    def model_sha256(self) -> str:
        return self._model.model_sha256

    def count_tokens(self, text: str) -> int:
        return self._model.count_tokens(text)

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        if texts and all(text in self._vectors for text in texts):
            return np.stack([self._vectors[text] for text in texts])
        return self._model.encode(texts, show_progress)


def synthetic_corpus(
    size: int, embedder: Embedder, edition: int = 0
) -> tuple[list[ThoughtTemplate], np.ndarray]:
    """``size`` templates with unit vectors clustered around the seed questions' embeddings;
    another ``edition`` words every template differently."""
    rng = np.random.default_rng(0)
    centers = embedder.encode(list(SEED_QUESTIONS))
    cluster = rng.integers(0, len(centers), size)
    vectors = centers[cluster] + NOISE * rng.standard_normal((size, centers.shape[1])) / np.sqrt(
        centers.shape[1]
    )
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    templates = []
    for i, c in enumerate(cluster):
        query = f"{SEED_QUESTIONS[c]} [synthetic {i}]"
        text = f"Task: variant {i}.{edition}\nReasoning steps:\n1. Restate.\n2. Solve.\n"
        text += "Answer format: X"
        task = TASKS[c % len(TASKS)]
        templates.append(
            ThoughtTemplate(
                id=template_id(task, query, text, ("model-a",)),
                task=task,
                text=text,
                source_query=query,
                source_models=("model-a",),
            )
        )
    return templates, vectors


def build_synthetic_index(size: int, index_dir: Path, embedder: Embedder, edition: int = 0) -> None:
    """Write the synthetic index of ``size`` templates into ``index_dir``."""
    templates, vectors = synthetic_corpus(size, embedder, edition)
    texts = [t.source_query for t in templates]
    vectors_by_text = dict(zip(texts, vectors, strict=True))
    build_index(templates, index_dir, PrecomputedEmbedder(vectors_by_text, embedder))


@functools.cache
def _model_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")


def in_model_thread(function: Callable[..., T], *args: Any) -> T:
    """Run in-process model work in the one thread that does all of it, as the server does:

    * on a loaded 2-core machine, model calls from the main thread measured several times
      slower than from a worker thread, which would flatter the served figures;
    * a second thread running torch keeps a second OpenMP team, and torch's runtime then stops
      spinning between parallel regions (``serving.micro_batcher``): the ceiling would
      run 20% slower than it can, which would flatter them too.
    """
    return _model_thread().submit(function, *args).result()


def _rate(requests: int, seconds: float) -> float:
    return requests / seconds if seconds > 0 else float("nan")


def warm_up(embedder: Embedder) -> None:
    """Warm the model up as the server does: the first calls of each shape are slow."""
    for size in WARM_UP_BATCH_SIZES:
        embedder.encode(load_queries(size))


def in_process_ceiling(
    index: LoadedIndex, embedder: Embedder, batch: int, seconds: float
) -> list[float]:
    """Durations of encode(batch)+search(batch) calls over ``seconds``."""
    queries = load_queries(4096)
    warm_up(embedder)
    durations, done, start = [], 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        chunk = queries[done % 2048 : done % 2048 + batch]
        began = time.perf_counter()
        index.search(embedder.encode(chunk), K)
        durations.append(time.perf_counter() - began)
        done += batch
    return durations


def in_process_retrieve(retriever: RetrievalEngine, seconds: float) -> list[float]:
    """Durations of ``RetrievalEngine.retrieve`` calls, one query each, over ``seconds``: the
    served path's own work (task inference, routing, ranking) in-process, without gRPC."""
    queries = load_queries(4096)
    durations: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        began = time.perf_counter()
        retriever.retrieve(RetrievalQuery(queries[len(durations) % 2048], k=K))
        durations.append(time.perf_counter() - began)
    return durations


def langchain_peer(index_dir: Path, seconds: float) -> dict[str, float]:
    """Requests/s of SemanticSimilarityExampleSelector.select_examples, one query at a time,
    over the index's vectors and source queries."""
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy
    from langchain_core.example_selectors import SemanticSimilarityExampleSelector
    from langchain_huggingface import HuggingFaceEmbeddings

    from thoughtbank.index.embedder import bundled_model_dir

    embeddings = HuggingFaceEmbeddings(
        model_name=str(bundled_model_dir()), encode_kwargs={"normalize_embeddings": True}
    )
    index = load_index(index_dir)
    texts = [template.source_query for template in index.templates.values()]  # in row order
    vectors = index.embeddings
    store = FAISS.from_embeddings(
        list(zip(texts, vectors.tolist(), strict=True)),
        embeddings,
        metadatas=[{"query": text} for text in texts],
        distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
    )
    selector = SemanticSimilarityExampleSelector(vectorstore=store, k=K, input_keys=["query"])
    queries = load_queries(2048)
    for query in queries[:16]:
        selector.select_examples({"query": query})  # warm up, as the server does
    durations = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        began = time.perf_counter()
        selector.select_examples({"query": queries[len(durations) % len(queries)]})
        durations.append(time.perf_counter() - began)
    return {
        "langchain_rps": _rate(len(durations), sum(durations)),
        "langchain_p50_ms": float(np.median(durations) * 1000),
    }


async def _closed_loop(address: str, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` concurrent callers on one grpc.aio channel, each sending as soon as answered:
    elapsed seconds, failures and each answered request's latency."""
    import grpc

    from thoughtbank.protos import pb2, pb2_grpc

    queries = load_queries(4096)
    latencies: list[float] = []
    failures = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb2_grpc.ThoughtTemplateServiceStub(channel)
        deadline = time.perf_counter() + seconds

        async def client(offset: int) -> None:
            nonlocal failures
            n = offset
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    await stub.Retrieve(
                        pb2.RetrieveRequest(query=queries[n % 4096], k=K), timeout=60
                    )
                    latencies.append(time.perf_counter() - began)
                except grpc.aio.AioRpcError:
                    failures += 1
                n += clients

        start = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return {"elapsed": elapsed, "failures": failures, "latencies": latencies}


async def _idle_round_trips(address: str, gap: float, seconds: float) -> dict[str, Any]:
    """One caller sending a health check, then idling ``gap`` seconds as a lone client does
    while the server embeds its query: what gRPC alone adds to such a client's request, with
    the same idle time (which makes both processes' wake-ups slow) between calls."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=60)
            latencies.append(time.perf_counter() - began)
            await asyncio.sleep(gap)
    return {"latencies": latencies}


def _serve_load_rounds(address: str) -> None:
    """The load process: per line on stdin, ``retrieve CLIENTS SECONDS`` (a closed-loop round)
    or ``idle GAP SECONDS`` (health checks GAP seconds apart); its figures as one JSON line on
    stdout, until stdin closes."""
    for line in sys.stdin:
        kind, value, seconds = line.split()
        if kind == "idle":
            round_ = _idle_round_trips(address, float(value), float(seconds))
        else:
            round_ = _closed_loop(address, int(value), float(seconds))
        print(json.dumps(asyncio.run(round_)), flush=True)


async def _send_batches(address: str, clients: int) -> None:
    """``clients`` callers sending RetrieveBatch of ``BATCH_QUERIES`` queries, each again as
    soon as answered, until the process is stopped; says "sending" once all have sent."""
    import grpc

    from thoughtbank.protos import pb2, pb2_grpc

    queries = load_queries(4096)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb2_grpc.ThoughtTemplateServiceStub(channel)

        async def caller(offset: int) -> None:
            request = pb2.RetrieveBatchRequest(
                requests=[
                    pb2.RetrieveRequest(query=queries[(offset * BATCH_QUERIES + i) % 4096], k=K)
                    for i in range(BATCH_QUERIES)
                ]
            )
            while True:
                await stub.RetrieveBatch(request, timeout=3600)

        callers = [asyncio.ensure_future(caller(i)) for i in range(clients)]
        await asyncio.sleep(0)
        print("sending", flush=True)
        await asyncio.gather(*callers)


class BatchLoad:
    """``_send_batches`` in a child process, from entering until leaving the ``with`` block."""

    def __init__(self, address: str, clients: int) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_serving", "--batches", address, str(clients)],
            stdout=subprocess.PIPE,
            text=True,
        )

    def __enter__(self) -> BatchLoad:
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "sending":
            raise RuntimeError(f"the batch load ended (exit code {self._process.poll()})")
        time.sleep(0.5)  # the batches reach the server and fill its lanes
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._process.kill()  # its calls are cancelled: the server drops their queued queries
        self._process.wait(60)
        time.sleep(1.0)  # micro-batches already computing finish before the next round


class LoadGenerator:
    """grpc.aio clients in a process of their own, so on 2 cores they compete with the server
    as little as a client can; started once, so that rounds can be short."""

    def __init__(self, address: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_serving", "--load", address],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def round(self, clients: int, seconds: float) -> dict[str, Any]:
        """One round at ``clients``: elapsed seconds, failures and latencies."""
        return self._ask(f"retrieve {clients} {seconds}")

    def idle_round(self, gap: float, seconds: float) -> dict[str, Any]:
        """Latencies of health checks sent ``gap`` seconds apart."""
        return self._ask(f"idle {gap} {seconds}")

    def _ask(self, line: str) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(f"{line}\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the load process ended (exit code {self._process.poll()})")
        return json.loads(answer)

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(60)


def measure_level(
    load: LoadGenerator,
    index: LoadedIndex,
    embedder: Embedder,
    clients: int,
    seconds: float,
    retriever: RetrievalEngine | None = None,
) -> dict[str, float]:
    """Ceiling and served figures at ``clients`` from alternating rounds, pooled; with a
    ``retriever``, also its in-process latency, in the same rounds."""
    ceiling: list[float] = []
    in_process: list[float] = []
    latencies: list[float] = []
    elapsed = failures = 0.0
    rounds = ROUNDS[clients]
    for _ in range(rounds):
        ceiling += in_model_thread(in_process_ceiling, index, embedder, clients, seconds / rounds)
        if retriever is not None:
            in_process += in_model_thread(in_process_retrieve, retriever, seconds / rounds)
        round_ = load.round(clients, seconds / rounds)
        latencies += round_["latencies"]
        elapsed += round_["elapsed"]
        failures += round_["failures"]
    figures = {
        f"ceiling_rps_{clients}": _rate(clients * len(ceiling), sum(ceiling)),
        f"served_rps_{clients}": _rate(len(latencies), elapsed),
        f"served_failures_{clients}": failures,
        f"served_p50_ms_{clients}": percentile_ms(latencies, 50),
        f"served_p99_ms_{clients}": percentile_ms(latencies, 99),
    }
    if clients == 1:
        figures["ceiling_p50_ms_1"] = percentile_ms(ceiling, 50)
    if retriever is not None:
        figures[f"retriever_p50_ms_{clients}"] = percentile_ms(in_process, 50)
    return figures


def measure_fairness(load: LoadGenerator, address: str, seconds: float) -> dict[str, float]:
    """p99 of a lone Retrieve caller without and beside ``BATCH_CLIENTS`` batch callers, from
    alternating rounds."""
    alone: list[float] = []
    beside: list[float] = []
    for _ in range(FAIR_ROUNDS):
        alone += load.round(1, seconds / FAIR_ROUNDS)["latencies"]
        with BatchLoad(address, BATCH_CLIENTS):
            beside += load.round(1, seconds / FAIR_ROUNDS)["latencies"]
    figures = {
        "fair_p99_ms_alone": percentile_ms(alone, 99),
        "fair_p99_ms_beside_batches": percentile_ms(beside, 99),
        "fair_p50_ms_beside_batches": percentile_ms(beside, 50),
    }
    figures["fair_p99_ratio"] = ratio(
        figures["fair_p99_ms_beside_batches"], figures["fair_p99_ms_alone"]
    )
    return figures


def measure(index_dir: Path, embedder: Embedder, seconds: float) -> dict[str, float]:
    """Every level against one server, each served round right after a ceiling round."""
    from thoughtbank.retriever.serving.process import ServerProcess

    index = load_index(index_dir)
    retriever = in_model_thread(RetrievalEngine, index, embedder)
    figures = {}
    with (
        ServerProcess(index_dir, extra_args=("--log-level", "WARNING")) as server,
        LoadGenerator(server.address) as load,
    ):
        for clients in CONCURRENCY:
            figures.update(
                measure_level(
                    load, index, embedder, clients, seconds, retriever if clients == 1 else None
                )
            )
            if clients == 1:
                gap = figures["ceiling_p50_ms_1"] / 1000
                idle = load.idle_round(gap, seconds / ROUNDS[1])
                figures["grpc_idle_round_trip_p50_ms"] = percentile_ms(idle["latencies"], 50)
        figures.update(measure_fairness(load, server.address, seconds))
    return figures


def measure_fast_backend(index_dir: Path, seconds: float) -> dict[str, float]:
    """The 1- and 32-client levels again on an index built on the default (fast) backend,
    served and ceilinged on it: figures prefixed ``fast_``."""
    from thoughtbank.retriever.serving.process import ServerProcess

    index = load_index(index_dir)
    embedder = load_embedder()
    retriever = in_model_thread(RetrievalEngine, index, embedder)
    print(f"fast backend: {embedder.describe()}", file=sys.stderr)
    figures: dict[str, float] = {}
    with (
        ServerProcess(index_dir, extra_args=("--log-level", "WARNING")) as server,
        LoadGenerator(server.address) as load,
    ):
        for clients in (1, 32):
            level = measure_level(
                load, index, embedder, clients, seconds, retriever if clients == 1 else None
            )
            figures.update({f"fast_{name}": value for name, value in level.items()})
        gap = figures["fast_ceiling_p50_ms_1"] / 1000
        idle = load.idle_round(gap, seconds / ROUNDS[1])
        figures["fast_grpc_idle_round_trip_p50_ms"] = percentile_ms(idle["latencies"], 50)
    return figures


def _in_child(*args: str) -> str:
    """Run ``python -m benchmarks.bench_serving ARGS`` and return its standard output."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_serving", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def run(quick: bool) -> dict[str, float]:
    """Build the index and measure the LangChain peer in child processes, so that each
    in-process figure comes from a process that, like an app, only loads an index and runs one
    model in one thread: after building the index in the same process, the ceiling measured up
    to 30% slower (FAISS's OpenMP work bound to torch's runtime, which torch loads globally),
    which would flatter the served figures."""
    size, seconds = (10_000, 4.0) if quick else (100_000, 15.0)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as folder:
        fp32_dir, fast_dir = Path(folder) / "fp32", Path(folder) / "fast"
        _in_child("--build", str(size), str(fp32_dir), "torch")
        _in_child("--build", str(size), str(fast_dir), "auto")
        figures = {"templates": float(size)}
        figures.update(measure(fp32_dir, TorchEmbedder(), seconds))
        figures.update(measure_fast_backend(fast_dir, seconds))
        figures.update(json.loads(_in_child("--langchain", str(fp32_dir), str(seconds))))
    for clients in CONCURRENCY:
        figures[f"ratio_to_ceiling_{clients}"] = (
            figures[f"served_rps_{clients}"] / figures[f"ceiling_rps_{clients}"]
        )
        figures[f"ratio_to_langchain_{clients}"] = (
            figures[f"served_rps_{clients}"] / figures["langchain_rps"]
        )
    figures["serve_fast_vs_fp32_ceiling_32"] = ratio(
        figures["fast_served_rps_32"], figures["ceiling_rps_32"]
    )
    figures["serve_fast_vs_own_ceiling_32"] = ratio(
        figures["fast_served_rps_32"], figures["fast_ceiling_rps_32"]
    )
    figures["p50_fast_vs_fp32_served_1"] = ratio(
        figures["fast_served_p50_ms_1"], figures["served_p50_ms_1"]
    )
    figures["p50_fast_vs_retriever_plus_rtt_1"] = ratio(
        figures["fast_served_p50_ms_1"],
        figures["fast_retriever_p50_ms_1"] + figures["fast_grpc_idle_round_trip_p50_ms"],
    )
    figures["p50_ratio_to_one_call_1"] = figures["served_p50_ms_1"] / figures["ceiling_p50_ms_1"]
    figures["p50_ratio_to_retriever_1"] = figures["served_p50_ms_1"] / figures["retriever_p50_ms_1"]
    return figures


def report(figures: dict[str, float]) -> None:
    print(f"index: {figures['templates']:.0f} synthetic templates; Retrieve k={K}")
    print(
        f"{'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ceiling':>8} "
        f"{'x ceil':>7} {'x LangChain':>12}"
    )
    for clients in CONCURRENCY:
        print(
            f"{clients:>7} {figures[f'served_rps_{clients}']:>8.1f} "
            f"{figures[f'served_p50_ms_{clients}']:>8.1f} "
            f"{figures[f'served_p99_ms_{clients}']:>8.1f} "
            f"{figures[f'ceiling_rps_{clients}']:>8.1f} "
            f"{figures[f'ratio_to_ceiling_{clients}']:>7.2f} "
            f"{figures[f'ratio_to_langchain_{clients}']:>12.2f}"
        )
    print(
        f"LangChain SemanticSimilarityExampleSelector: {figures['langchain_rps']:.1f} req/s, "
        f"p50 {figures['langchain_p50_ms']:.1f} ms"
    )
    print(
        f"p50 at 1 client {figures['served_p50_ms_1']:.1f} ms vs one in-process "
        f"encode+search {figures['ceiling_p50_ms_1']:.1f} ms: "
        f"{figures['p50_ratio_to_one_call_1']:.2f}x (goal <= 1.15)"
    )
    print(
        f"  in-process RetrievalEngine.retrieve (adds task inference and ranking): "
        f"{figures['retriever_p50_ms_1']:.1f} ms, served "
        f"{figures['p50_ratio_to_retriever_1']:.2f}x; a no-op gRPC call after as long idle: "
        f"{figures['grpc_idle_round_trip_p50_ms']:.1f} ms"
    )
    print(
        f"default backend: 32 clients {figures['fast_served_rps_32']:.1f} req/s = "
        f"{figures['serve_fast_vs_fp32_ceiling_32']:.2f}x the torch fp32 ceiling (goal >= 2.5), "
        f"{figures['serve_fast_vs_own_ceiling_32']:.2f}x its own (goal >= 0.85); 1-client p50 "
        f"{figures['fast_served_p50_ms_1']:.1f} ms = {figures['p50_fast_vs_fp32_served_1']:.2f}x "
        f"torch fp32's (goal <= 0.5), {figures['p50_fast_vs_retriever_plus_rtt_1']:.2f}x "
        "retriever + idle round trip (goal <= 1.10)"
    )
    print(
        f"32 clients: {figures['ratio_to_ceiling_32']:.2f}x ceiling (goal >= 0.85), "
        f"{figures['ratio_to_langchain_32']:.2f}x LangChain (goal >= 2)"
    )
    print(
        f"single Retrieve p99 beside {BATCH_CLIENTS} clients sending RetrieveBatch of "
        f"{BATCH_QUERIES}: {figures['fair_p99_ms_beside_batches']:.1f} ms (p50 "
        f"{figures['fair_p50_ms_beside_batches']:.1f}) vs {figures['fair_p99_ms_alone']:.1f} ms "
        f"alone: {figures['fair_p99_ratio']:.2f}x (goal <= 3)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k templates, short runs")
    parser.add_argument(
        "--load", metavar="ADDRESS", help=argparse.SUPPRESS
    )  # the load process (LoadGenerator)
    parser.add_argument(
        "--build", nargs=3, metavar=("SIZE", "DIR", "BACKEND"), help=argparse.SUPPRESS
    )  # the build process (run)
    parser.add_argument(
        "--langchain", nargs=2, metavar=("DIR", "SECONDS"), help=argparse.SUPPRESS
    )  # the LangChain peer's process (run)
    parser.add_argument(
        "--batches", nargs=2, metavar=("ADDRESS", "CLIENTS"), help=argparse.SUPPRESS
    )  # the batch load's process (BatchLoad)
    args = parser.parse_args(argv)
    if args.load:
        _serve_load_rounds(args.load)
        return 0
    if args.batches:
        address, clients = args.batches
        asyncio.run(_send_batches(address, int(clients)))
        return 0
    if args.build:
        size, folder, backend = args.build
        build_synthetic_index(int(size), Path(folder), load_embedder(backend=backend))
        return 0
    if args.langchain:
        folder, seconds = args.langchain
        print(json.dumps(in_model_thread(langchain_peer, Path(folder), float(seconds))))
        return 0
    report(run(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
