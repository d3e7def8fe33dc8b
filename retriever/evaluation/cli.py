"""``thoughtbank eval ...``: measure retrieval quality, calibrate decline, run end-to-end."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from thoughtbank.cli_common import (
    Commands,
    add_embedding_flags,
    existing_file,
    finite_float,
    fraction,
    positive_float,
    positive_int,
    quiet_model_loading,
)
from thoughtbank.retriever.cli import add_connection_args, open_client
from thoughtbank.retriever.evaluation.lexical import HybridConfig

if TYPE_CHECKING:
    import numpy as np

    from thoughtbank.index import LoadedIndex

# Outcomes per RecordOutcomes call: well under a server's default limit of items per call.
REPLAY_BATCH = 500


def k_list(text: str) -> tuple[int, ...]:
    """``1,3,5`` -> (1, 3, 5); every k must be >= 1."""
    try:
        ks = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        ks = ()
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 1,3,5, got {text!r}")
    return ks


def cmd_retrieval(args: argparse.Namespace) -> int:
    from thoughtbank.index import load_embedder
    from thoughtbank.retriever.evaluation.dataset import Protocol, read_labeled_queries
    from thoughtbank.retriever.evaluation.report import format_table, write_report
    from thoughtbank.retriever.evaluation.retrieval import (
        EvalSettings,
        embed_corpus,
        evaluate_retrieval,
    )

    queries = read_labeled_queries(args.queries, args.split_column)
    protocol = Protocol(
        leave_one_out=args.train is None,
        folds=args.folds,
        train=args.train or "train",
        test=args.test,
    )
    settings = EvalSettings(
        protocol=protocol,
        task_label=args.task_label,
        ks=args.k,
        baselines=args.baselines,
        hybrid=HybridConfig(
            min_confidence=args.task_min_confidence, lexical_weight=args.lexical_weight
        ),
    )
    quiet_model_loading(sys.stderr.isatty())
    progress = not args.no_progress and sys.stderr.isatty()
    embedder = load_embedder(args.model, args.backend, args.precision, args.device)
    corpus = embed_corpus(queries, embedder, progress)
    evaluation = evaluate_retrieval(corpus, queries, settings, progress)
    if args.report:
        write_report(evaluation, args.report, 3 if 3 in args.k else args.k[0])
    print(
        json.dumps(evaluation.to_dict(), indent=2)
        if args.json
        else format_table(evaluation, args.k)
    )
    return 0


def _add_retrieval(commands: Commands) -> None:
    parser = commands.add_parser(
        "retrieval", help="same-task precision@k, hit@k and MRR of retrieval on labeled queries"
    )
    parser.add_argument(
        "--queries",
        type=existing_file,
        required=True,
        help="JSONL(.gz) with task_name and query (and split for --train/--test)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--leave-one-out", action="store_true", help="every query against all others (default)"
    )
    mode.add_argument(
        "--train", help="value of the split column that forms the index (default: leave one out)"
    )
    parser.add_argument("--test", default="test", help="split value of the test queries")
    parser.add_argument("--split-column", default="split", help="column naming each query's split")
    parser.add_argument(
        "--folds",
        type=positive_int,
        default=5,
        help="leave-one-out: folds for training learned parts",
    )
    parser.add_argument(
        "--task-label",
        choices=["none", "given"],
        default="none",
        help="retrieve without the task (predict it) or with the true task",
    )
    parser.add_argument("--k", type=k_list, default=(1, 3, 5), help="cut-offs, e.g. 1,3,5")
    parser.add_argument(
        "--task-min-confidence",
        type=fraction,
        default=HybridConfig.min_confidence,
        help="route to the predicted task at or above this confidence",
    )
    parser.add_argument(
        "--lexical-weight",
        type=fraction,
        default=HybridConfig.lexical_weight,
        help="weight of BM25 in the order (0 = dense only)",
    )
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="also random, BM25, dense, and one ablation per part",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--report", type=Path, help="folder for retrieval.json and a PNG chart (default: none)"
    )
    parser.add_argument("--model", default="bundled:all-MiniLM-L6-v2", help="embedding model")
    parser.add_argument(
        "--device", default="cpu", choices=["auto", "cpu", "cuda"], help="device to embed on"
    )
    add_embedding_flags(parser, "auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.set_defaults(func=cmd_retrieval)


def cmd_e2e(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from thoughtbank.retriever.evaluation.dataset import read_labeled_queries
    from thoughtbank.retriever.evaluation.e2e import answer_queries, task_effects, write_rows
    from thoughtbank.retriever.serving.engine import RetrievalEngine
    from thoughtbank.templates.chat import load_chat_model

    queries = [
        q for q in read_labeled_queries(args.queries) if not args.split or q.split == args.split
    ][: args.limit]
    model = load_chat_model(args.llm, timeout_s=args.timeout)
    rows, skipped = answer_queries(
        queries, RetrievalEngine.open(args.index), model, args.k, model_name=args.llm
    )
    if not rows:
        raise ValueError(f"none of {len(queries)} queries has a metric eval e2e can score")
    if args.out:
        write_rows(args.out, rows)
    effects = {name: asdict(effect) for name, effect in task_effects(rows).items()}
    if args.json:
        print(json.dumps({"skipped": skipped, "tasks": effects}, indent=2))
    else:
        print(f"{'task':<24}{'n':>6}{'without':>9}{'with':>9}{'change':>9}  95% interval")
        for name, e in effects.items():
            print(
                f"{name:<24}{e['count']:>6}{e['without']:>9.3f}{e['with_templates']:>9.3f}"
                f"{e['change']:>+9.3f}  [{e['change_low']:+.3f}, {e['change_high']:+.3f}]"
            )
        print(f"skipped {skipped} queries whose metric cannot be scored here")
    return 0


def _add_e2e(commands: Commands) -> None:
    parser = commands.add_parser(
        "e2e", help="answer queries with and without templates; accuracy change per task"
    )
    parser.add_argument(
        "--llm", required=True, help="openai:MODEL or python:package.module:factory (a chat model)"
    )
    parser.add_argument(
        "--queries",
        type=existing_file,
        required=True,
        help="JSONL(.gz) with task_name, query, ground_truth and metric",
    )
    parser.add_argument("--index", type=Path, required=True, help="index directory")
    parser.add_argument("--split", default="", help="only queries of this split (e.g. test)")
    parser.add_argument(
        "--limit", type=positive_int, help="answer at most this many queries (default: all)"
    )
    parser.add_argument("--k", type=positive_int, default=3, help="templates per prompt")
    parser.add_argument(
        "--timeout", type=positive_float, default=120.0, help="seconds per LLM call"
    )
    parser.add_argument(
        "--out", type=Path, help="per-query results JSONL (for calibrate --e2e; default: none)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=cmd_e2e)


def cmd_replay(args: argparse.Namespace) -> int:
    """Record the rows of ``eval e2e --out`` as outcomes, through a server or in-process."""
    from thoughtbank.retriever.evaluation.e2e import read_rows

    rows = read_rows(args.results)
    outcomes = [o for o in (row.outcome() for row in rows) if o is not None]
    recorded = []
    with open_client(args) as client:
        for start in range(0, len(outcomes), REPLAY_BATCH):
            recorded += client.record_outcomes(outcomes[start : start + REPLAY_BATCH])
    print(
        f"recorded {sum(recorded)} outcomes; {recorded.count(False)} were recorded before; "
        f"{len(rows) - len(outcomes)} rows had no templates to credit"
    )
    return 0


def _add_replay(commands: Commands) -> None:
    parser = commands.add_parser(
        "replay", help="record the results of `eval e2e --out` as outcomes of their templates"
    )
    parser.add_argument("results", type=existing_file, help="per-query results of eval e2e")
    add_connection_args(parser)
    parser.set_defaults(func=cmd_replay)


def _feedback_observations(
    index_dir: Path, index: LoadedIndex
) -> tuple[list[str], np.ndarray, np.ndarray]:
    from thoughtbank.index import OutcomeStore, manifest_embedder, task_mean_scores
    from thoughtbank.retriever.evaluation import calibrate

    with OutcomeStore(index_dir) as store:
        if not store.path.exists():
            raise ValueError(f"{index_dir}: no outcomes recorded yet")
        task_mean = task_mean_scores(store.template_uses())
        queried = store.queried_uses()
    return calibrate.feedback_observations(
        index, queried, task_mean, manifest_embedder(index.manifest)
    )


def cmd_calibrate(args: argparse.Namespace) -> int:
    from thoughtbank.index import load_index, set_min_scores
    from thoughtbank.retriever.evaluation import calibrate
    from thoughtbank.retriever.evaluation.e2e import read_rows

    index = load_index(args.index)
    if args.e2e:
        observations = calibrate.e2e_observations(read_rows(args.e2e))
    elif args.feedback:
        observations = _feedback_observations(args.index, index)
    else:
        observations = calibrate.margin_observations(index, args.wrong_task_cost)
    min_scores = calibrate.thresholds_by_task(*observations)
    set_min_scores(args.index, index.version, min_scores)
    print(json.dumps({"version": index.version, "min_scores": min_scores}, indent=2))
    return 0


def _add_calibrate(commands: Commands) -> None:
    parser = commands.add_parser(
        "calibrate", help="choose per-task minimum scores and store them in the index manifest"
    )
    parser.add_argument("--index", type=Path, required=True, help="index directory")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--e2e",
        type=existing_file,
        help="results of `eval e2e --out` (default: retrieval margins, no LLM)",
    )
    source.add_argument(
        "--feedback",
        action="store_true",
        help="the outcomes recorded in INDEX_DIR (those that give their query)",
    )
    parser.add_argument(
        "--wrong-task-cost",
        type=finite_float,
        default=1.0,
        help="margins: loss of serving another task's template vs the gain of a same-task one",
    )
    parser.set_defaults(func=cmd_calibrate)


def cmd_templates(args: argparse.Namespace) -> int:
    from thoughtbank.templates.quality import evaluate_template_file, format_quality_table

    report = evaluate_template_file(args.templates, args.logs)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_quality_table(report))
    return 0


def _add_templates(commands: Commands) -> None:
    parser = commands.add_parser(
        "templates", help="template quality battery: leaks, boilerplate, formats (no LLM)"
    )
    parser.add_argument("templates", type=existing_file, help="templates JSONL written by mine")
    parser.add_argument(
        "--logs",
        type=Path,
        nargs="+",
        required=True,
        help="the logs the templates were mined from (ground truth, options)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=cmd_templates)


def add_commands(commands: Commands) -> None:
    evaluate = commands.add_parser("eval", help="measure and calibrate retrieval quality")
    eval_commands = evaluate.add_subparsers(
        dest="eval_command", required=True, metavar="EVALUATION"
    )
    _add_retrieval(eval_commands)
    _add_templates(eval_commands)
    _add_e2e(eval_commands)
    _add_calibrate(eval_commands)
    _add_replay(eval_commands)
