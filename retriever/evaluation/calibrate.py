"""Calibrated decline: per task, the minimum score below which its templates are not served.

Every observation is a served template's score and what serving it gained: from an e2e run the
change in the answer's score, from recorded outcomes the use's lift (its score against its
baseline) at the similarity of its query to the template, without an LLM +1 when the template
came from the query's own task and ``-wrong_task_cost`` when it did not. Per task of the
template, the threshold keeps the observations at or above it that maximize the total gain;
"serve none" is a candidate, so on the calibration data no task does worse with templates than
without.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from thoughtbank.index import Embedder, LoadedIndex, TemplateUse, lift_of, template_int_id
from thoughtbank.retriever.evaluation.e2e import AnsweredQuery

#: Above any cosine similarity: a task with this minimum is never served.
NEVER_SERVE = 1.001


def best_threshold(scores: np.ndarray, gains: np.ndarray) -> float | None:
    """The minimum score maximizing the summed gain of observations at or above it.

    ``None`` when serving everything is best (no threshold needed); ties go to the lower
    threshold, which serves more.
    """
    order = np.argsort(-scores, kind="stable")
    served_gain = np.concatenate([[0.0], np.cumsum(gains[order])])  # top-n served
    best = int(np.argmax(served_gain[::-1]))  # first maximum from "serve all" downwards
    served = len(scores) - best
    if served == len(scores):
        return None
    return NEVER_SERVE if served == 0 else float(scores[order][served - 1])


def thresholds_by_task(
    tasks: Sequence[str], scores: np.ndarray, gains: np.ndarray
) -> dict[str, float]:
    """``best_threshold`` per task; tasks that need none are left out."""
    task_array = np.asarray(tasks, dtype=object)
    chosen = {}
    for task in sorted(set(tasks)):
        mask = task_array == task
        threshold = best_threshold(scores[mask], gains[mask])
        if threshold is not None:
            chosen[str(task)] = round(threshold, 4)
    return chosen


def margin_observations(
    index: LoadedIndex, wrong_task_cost: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Each template's source query, retrieved leave-one-out: its top other template's task,
    score and gain (+1 same task, ``-wrong_task_cost`` otherwise). Uses stored embeddings."""
    templates = index.ordered_templates()
    if len(templates) < 2:
        raise ValueError("calibration needs an index with at least two templates")
    scores, ids = index.search(index.embeddings, 2)
    own = np.array([t.task for t in templates], dtype=object)
    row_ids = np.array([template_int_id(t.id) for t in templates])
    other = np.where(ids[:, 0] == row_ids, 1, 0)
    top_ids = ids[np.arange(len(ids)), other]
    top_scores = scores[np.arange(len(ids)), other].astype(np.float64)
    top_tasks = [index.templates[int(i)].task if i >= 0 else "" for i in top_ids]
    gains = np.where(np.array(top_tasks, dtype=object) == own, 1.0, -wrong_task_cost)
    return top_tasks, top_scores, gains


def e2e_observations(rows: Sequence[AnsweredQuery]) -> tuple[list[str], np.ndarray, np.ndarray]:
    served = [r for r in rows if r.top_task]
    return (
        [r.top_task for r in served],
        np.array([r.top_score for r in served]),
        np.array([r.gain for r in served]),
    )


def feedback_observations(
    index: LoadedIndex,
    queried_uses: Sequence[tuple[str, TemplateUse]],
    task_mean: dict[str, float],
    embedder: Embedder,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per recorded use of a template ``index`` holds: its task, its query's similarity to it
    (the query embedded again) and its lift; uses of other versions' templates are left out."""
    held = [(q, u) for q, u in queried_uses if template_int_id(u.template_id) in index.templates]
    if not held:
        raise ValueError("no recorded outcome gives its query and names a live template")
    queries = sorted({q for q, _ in held})
    vectors = embedder.encode(queries)
    row_of = {q: n for n, q in enumerate(queries)}
    int_ids = [template_int_id(u.template_id) for _, u in held]
    similarities = np.einsum(
        "ij,ij->i", vectors[[row_of[q] for q, _ in held]], index.embeddings_of(int_ids)
    )
    return (
        [index.templates[i].task for i in int_ids],
        similarities.astype(np.float64),
        np.array([lift_of(u, task_mean) for _, u in held]),
    )
