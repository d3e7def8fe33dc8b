"""Merging of near-duplicate templates within a task, keeping every source's provenance.

Many queries of one task distil to (almost) the same template; keeping each would fill the top-k
of a retrieval with copies. Templates whose text embeddings have cosine similarity at or above a
threshold are merged greedily, in (task, id) order so the result does not depend on the order
groups finished in. The embedding function is a parameter (the CLI passes the index stage's
``load_embedder().encode``) so that this stage does not depend on the index stage.

Embedding every template takes minutes on a large log, so texts are embedded in chunks under a
progress bar, and the clusters (positions in (task, id) order) can be kept by the mining job
so that ``--resume`` does not embed again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import chain, groupby
from typing import Any

import numpy as np
from tqdm import tqdm

from thoughtbank.progress import progress_bar
from thoughtbank.templates.schema import ThoughtTemplate, template_id

EmbedFunction = Callable[[Sequence[str]], np.ndarray]
DEFAULT_MERGE_THRESHOLD = 0.95
#: Texts embedded per call: small enough for the progress bar to move every few seconds.
EMBED_CHUNK = 256


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalized: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return normalized


def cluster_near_duplicates(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Greedy clusters of row indices: each row joins the most similar earlier cluster head
    with cosine >= ``threshold``, or heads a new cluster."""
    unit = _normalized(np.asarray(vectors, dtype=np.float32))
    heads = np.empty_like(unit)
    clusters: list[list[int]] = []
    for row, vector in enumerate(unit):
        similarities = heads[: len(clusters)] @ vector
        best = int(np.argmax(similarities)) if clusters else -1
        if best >= 0 and similarities[best] >= threshold:
            clusters[best].append(row)
        else:
            heads[len(clusters)] = vector
            clusters.append([row])
    return clusters


def merge_templates(members: Sequence[ThoughtTemplate]) -> ThoughtTemplate:
    """One template: the first member's text, every member's sources, models, ids and queries."""
    head, others = members[0], members[1:]
    if not others:
        return head
    models = tuple(dict.fromkeys(chain.from_iterable(t.source_models for t in members)))
    return replace(
        head,
        id=template_id(head.task, head.source_query, head.text, models),
        source_models=models,
        source_query_ids=tuple(sorted({i for t in members for i in t.source_query_ids})),
        sources=tuple(chain.from_iterable(t.sources for t in members)),
        merged_queries=tuple(
            chain.from_iterable(
                (*t.merged_queries, t.source_query) if t is not head else t.merged_queries
                for t in members
            )
        ),
        flags=tuple(dict.fromkeys(chain.from_iterable(t.flags for t in members))),
        pitfalls=next((t.pitfalls for t in members if t.pitfalls), ""),
    )


def in_merge_order(templates: Sequence[ThoughtTemplate]) -> list[ThoughtTemplate]:
    """The (task, id) order that clusters' positions refer to."""
    return sorted(templates, key=lambda t: (t.task, t.id))


def _embed_in_chunks(texts: Sequence[str], embed: EmbedFunction, progress: tqdm[Any]) -> np.ndarray:
    chunks = []
    for start in range(0, len(texts), EMBED_CHUNK):
        chunk = texts[start : start + EMBED_CHUNK]
        chunks.append(np.asarray(embed(chunk), dtype=np.float32))
        progress.update(len(chunk))
    return np.concatenate(chunks)


def near_duplicate_clusters(
    templates: Sequence[ThoughtTemplate],
    embed: EmbedFunction,
    threshold: float,
    progress: bool = False,
) -> list[list[int]]:
    """Clusters of near-duplicates of one task, as positions in ``in_merge_order(templates)``.

    ``progress`` shows a bar of templates embedded on stderr."""
    ordered = in_merge_order(templates)
    clusters: list[list[int]] = []
    with progress_bar("merging near-duplicates", "templates", progress, len(ordered)) as bar:
        start = 0
        for _, task_group in groupby(ordered, key=lambda t: t.task):
            members = list(task_group)
            if len(members) == 1:
                clusters.append([start])
                bar.update(1)
            else:
                vectors = _embed_in_chunks([t.text for t in members], embed, bar)
                found = cluster_near_duplicates(vectors, threshold)
                clusters.extend([start + i for i in cluster] for cluster in found)
            start += len(members)
    return clusters


def apply_clusters(
    templates: Sequence[ThoughtTemplate], clusters: Sequence[Sequence[int]]
) -> list[ThoughtTemplate]:
    """One merged template per cluster of positions in ``in_merge_order(templates)``."""
    ordered = in_merge_order(templates)
    merged = [merge_templates([ordered[i] for i in cluster]) for cluster in clusters]
    return in_merge_order(merged)


def merge_near_duplicates(
    templates: Sequence[ThoughtTemplate],
    embed: EmbedFunction,
    threshold: float,
    progress: bool = False,
) -> list[ThoughtTemplate]:
    """``templates`` with near-duplicates of the same task merged, sorted by (task, id)."""
    return apply_clusters(templates, near_duplicate_clusters(templates, embed, threshold, progress))
