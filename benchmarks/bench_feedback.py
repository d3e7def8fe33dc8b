"""Learning from use: does ranking by outcome evidence find the templates that help?

A simulated app over the real FusionBench query mix. Every train query becomes a template; each
template has a hidden usefulness (world-knowledge tasks' templates mostly hurt, as
FusionFactory found, the others mostly help). The app asks the test queries in random order, puts
the top 3 in its prompt, and the answer is correct with probability ``base + mean hidden
usefulness of the 3``; that outcome is recorded in a real outcome store and the ranking re-reads
the evidence every ``READ_EVERY`` outcomes, as a server does every ``--feedback-interval``.

Reported after 0, 1k, 5k and 20k outcomes (quick: 0, 250, 1k, 2k): the mean hidden usefulness
of the served top 3 and the expected accuracy over all test queries, beside similarity-only
ranking and an oracle that ranks by the hidden values; then again with Thompson sampling
(``--exploration 1``) serving the prompts while it learns, measured by the greedy ranking of
what it learnt. Goals: after 5k outcomes at least 80% of
the oracle's gain over similarity-only; no task worse than similarity-only after 20k. The
second part measures durable ``RecordOutcome`` throughput of a real server at 32 clients beside
the rate of an RPC that does next to nothing (``GetTemplate``); goal >= 1,000 outcomes/s.

Usage: ``python -m benchmarks.bench_feedback [--quick]``
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np

from benchmarks.bench_quality import QUERIES, _data_dir
from benchmarks.common import ratio, run_cli
from thoughtbank.index import build_index, load_embedder, load_index
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.index.usefulness import Usefulness, estimate_usefulness
from thoughtbank.protos import pb2, pb2_grpc
from thoughtbank.retriever.evaluation.dataset import read_labeled_queries
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.retriever.serving.feedback import UsefulnessRanking
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.retriever.types import RetrievalQuery
from thoughtbank.schema import OutcomeRecord, ThoughtTemplate, template_id

K = 3
BASE_ACCURACY = 0.5
WORLD_KNOWLEDGE = frozenset({"natural_qa", "trivia_qa"})
READ_EVERY = 250
CLIENTS = 32
THROUGHPUT_SECONDS = 5.0


def hidden_usefulness(tasks: list[str], rng: np.random.Generator) -> np.ndarray:
    """Per template: world knowledge mostly hurts, the rest mostly helps."""
    means = np.array([-0.15 if t in WORLD_KNOWLEDGE else 0.05 for t in tasks])
    return np.clip(means + rng.normal(0, 0.15, len(tasks)), -0.5, 0.5)


def oracle_estimates(templates: list[ThoughtTemplate], hidden: np.ndarray) -> dict[str, Usefulness]:
    return {
        t.id: Usefulness(t.id, 1_000, 0.0, float(u), float(u), False)
        for t, u in zip(templates, hidden, strict=True)
    }


class Simulation:
    """The engine, the queries' vectors and the hidden truth, shared by every ranking."""

    def __init__(self, folder: Path, quick: bool) -> None:
        queries = read_labeled_queries(_data_dir() / QUERIES)
        train = [q for q in queries if q.split == "train"]
        self.test = [q for q in queries if q.split == "test"]
        if quick:
            train, self.test = train[::8], self.test[::4]
        self.templates = [
            ThoughtTemplate(
                id=template_id(q.task, q.query, f"solve as in {q.query_id}", ("sim",)),
                task=q.task,
                text=f"Steps that solved {q.query_id}",
                source_query=q.query,
                source_models=("sim",),
            )
            for q in train
        ]
        embedder = load_embedder()
        build_index(self.templates, folder, embedder)
        self.index_dir = folder
        self.rng = np.random.default_rng(0)
        self.hidden = hidden_usefulness([t.task for t in self.templates], self.rng)
        self.hidden_by_id = {t.id: u for t, u in zip(self.templates, self.hidden, strict=True)}
        self.engine = RetrievalEngine.of_index(load_index(folder), embedder)
        self.requests = [RetrievalQuery(q.query, k=K) for q in self.test]
        self.vectors = embedder.encode([q.query for q in self.test])

    def served(self, ranking: UsefulnessRanking | None) -> list[list[str]]:
        """The top-3 template ids of every test query under ``ranking`` (the engine reuses the
        first one's prepared templates: only the ranking differs)."""
        engine = RetrievalEngine(
            self.engine.index, self.engine.embedder, previous=self.engine, feedback=ranking
        )
        results = engine.search_vectors(self.requests, self.vectors)
        return [[h.template.id for h in r.hits] for r in results]

    def quality(self, served: list[list[str]]) -> tuple[float, dict[str, float]]:
        """Mean hidden usefulness of the served top 3, and expected accuracy per task."""
        gains = [np.mean([self.hidden_by_id[i] for i in ids]) for ids in served]
        by_task: dict[str, list[float]] = defaultdict(list)
        for query, gain in zip(self.test, gains, strict=True):
            by_task[query.task].append(float(np.clip(BASE_ACCURACY + gain, 0, 1)))
        return float(np.mean(gains)), {t: float(np.mean(a)) for t, a in by_task.items()}


def learning_curve(
    sim: Simulation, checkpoints: list[int], exploration: float = 0.0
) -> dict[str, float]:
    """The figures of one run from no outcomes on; with ``exploration``, prompts are served by
    Thompson sampling while learning and measured by the greedy ranking of the same evidence."""
    figures: dict[str, float] = {}
    similarity_gain, similarity_tasks = sim.quality(sim.served(None))
    oracle = UsefulnessRanking()
    oracle.update(oracle_estimates(sim.templates, sim.hidden))
    oracle_gain, _ = sim.quality(sim.served(oracle))
    figures["similarity_usefulness"] = similarity_gain
    figures["oracle_usefulness"] = oracle_gain
    ranking = UsefulnessRanking(exploration=exploration, seed=0)
    greedy = UsefulnessRanking()
    store = OutcomeStore(sim.index_dir)
    recorded = 0
    for checkpoint in checkpoints:
        while recorded < checkpoint:
            # The ranking changes only when the evidence is read: one search serves the batch.
            size = min(READ_EVERY, checkpoint - recorded)
            batch = [int(n) for n in sim.rng.integers(len(sim.test), size=size)]
            served = sim.served(ranking)
            outcomes = []
            for n in batch:
                ids = served[n]
                p = np.clip(BASE_ACCURACY + np.mean([sim.hidden_by_id[i] for i in ids]), 0, 1)
                score = float(sim.rng.random() < p)
                outcome_id = f"o{recorded + len(outcomes)}"
                outcomes.append(OutcomeRecord(outcome_id, tuple(ids), score, task=sim.test[n].task))
            store.record(outcomes)
            recorded += len(outcomes)
            estimates = estimate_usefulness(store.template_uses())
            ranking.update(estimates)
            greedy.update(estimates)
        gain, tasks = sim.quality(sim.served(greedy))
        figures[f"usefulness_after_{checkpoint}"] = gain
        figures[f"accuracy_after_{checkpoint}"] = float(np.mean(list(tasks.values())))
        figures[f"oracle_gain_share_after_{checkpoint}"] = ratio(
            gain - similarity_gain, oracle_gain - similarity_gain
        )
        figures[f"worst_task_delta_after_{checkpoint}"] = min(
            tasks[t] - similarity_tasks[t] for t in tasks
        )
    store.close()
    store.path.unlink()  # the next run starts from no outcomes
    figures["similarity_accuracy"] = float(np.mean(list(similarity_tasks.values())))
    # The goals' checkpoints: the second to last (5k; quick 1k) and the last (20k; quick 2k).
    figures["oracle_gain_share_at_goal"] = figures[f"oracle_gain_share_after_{checkpoints[-2]}"]
    figures["worst_task_delta_at_end"] = figures[f"worst_task_delta_after_{checkpoints[-1]}"]
    return figures


Call = Callable[[pb2_grpc.ThoughtTemplateServiceStub, int, int], None]


def _rate(address: str, call: Call, seconds: float) -> float:
    """Calls per second of ``CLIENTS`` closed-loop clients, each on its own channel."""
    done = [0] * CLIENTS
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        with grpc.insecure_channel(address) as channel:
            stub = pb2_grpc.ThoughtTemplateServiceStub(channel)
            while time.monotonic() < stop:
                call(stub, n, done[n])
                done[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def throughput(sim: Simulation) -> dict[str, float]:
    ids = [t.id for t in sim.templates[:2]]

    def record(stub: pb2_grpc.ThoughtTemplateServiceStub, n: int, i: int) -> None:
        stub.RecordOutcome(
            pb2.RecordOutcomeRequest(outcome_id=f"t{n}-{i}", template_ids=ids, score=1.0)
        )

    def no_op(stub: pb2_grpc.ThoughtTemplateServiceStub, n: int, i: int) -> None:
        stub.GetTemplate(pb2.GetTemplateRequest(id=ids[0]))

    with ServerProcess(sim.index_dir, extra_args=("--log-level", "WARNING")) as server:
        no_op_rate = _rate(server.address, no_op, THROUGHPUT_SECONDS)
        outcome_rate = _rate(server.address, record, THROUGHPUT_SECONDS)
    return {
        "record_outcome_per_s_32": outcome_rate,
        "get_template_per_s_32": no_op_rate,
        "record_outcome_vs_get_template_32": ratio(outcome_rate, no_op_rate),
    }


def run(quick: bool) -> dict[str, float]:
    checkpoints = [0, 250, 1_000, 2_000] if quick else [0, 1_000, 5_000, 20_000]
    with tempfile.TemporaryDirectory(prefix="bench-feedback-") as folder:
        sim = Simulation(Path(folder) / "index", quick)
        exploring = learning_curve(sim, checkpoints, exploration=1.0)
        return {
            **learning_curve(sim, checkpoints),
            **{f"explore_{name}": value for name, value in exploring.items()},
            **throughput(sim),
        }


def report(figures: dict[str, float]) -> None:
    marks = sorted(int(k.rsplit("_", 1)[1]) for k in figures if k.startswith("usefulness_after_"))
    print(
        f"served top-3 hidden usefulness: similarity {figures['similarity_usefulness']:+.3f}, "
        f"oracle {figures['oracle_usefulness']:+.3f}"
    )
    for prefix, label in (("", "greedy"), ("explore_", "Thompson sampling while learning")):
        print(label)
        for mark in marks:
            print(
                f"  after {mark:>6} outcomes: {figures[f'{prefix}usefulness_after_{mark}']:+.3f} "
                f"({figures[f'{prefix}oracle_gain_share_after_{mark}']:.0%} of the oracle's "
                f"gain), accuracy {figures[f'{prefix}accuracy_after_{mark}']:.3f}, worst task "
                f"{figures[f'{prefix}worst_task_delta_after_{mark}']:+.3f} vs similarity"
            )
    print(
        f"RecordOutcome at {CLIENTS} clients: {figures['record_outcome_per_s_32']:.0f}/s "
        f"(goal 1,000), GetTemplate {figures['get_template_per_s_32']:.0f}/s"
    )


if __name__ == "__main__":
    sys.exit(run_cli(__doc__, run, report))
