"""End-to-end evaluation: does an LLM answer better with retrieved templates than without?

Each query is answered twice by the same chat model, once as the plain question and once with
the augmented prompt the server would build (the query's own template excluded), and both
answers are scored with the query's metric. The per-query rows are kept so that ``thoughtbank
eval calibrate --e2e`` can learn where templates stop helping, and ``thoughtbank eval replay``
can record them as outcomes (the answer with templates scored against the one without).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from thoughtbank.retriever.evaluation.dataset import LabeledQuery
from thoughtbank.retriever.evaluation.scoring import scorer_for
from thoughtbank.retriever.prompt import build_augmented_prompt
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.retriever.types import RetrievalQuery
from thoughtbank.schema import OutcomeRecord

BOOTSTRAP_SAMPLES = 1000


@dataclass(frozen=True)
class AnsweredQuery:
    """One query's two scored answers and what was retrieved for it."""

    task: str
    metric: str
    score_without: float
    score_with: float
    top_score: float
    top_task: str
    # What an outcome needs; rows written before these were kept cannot be replayed.
    query: str = ""
    template_ids: tuple[str, ...] = ()
    index_version: str = ""
    model: str = ""

    @property
    def gain(self) -> float:
        return self.score_with - self.score_without

    def outcome(self) -> OutcomeRecord | None:
        """This answer as an outcome of its templates (None when none was served); its id is
        derived from the row, so replaying the same results twice counts them once."""
        if not self.template_ids:
            return None
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()
        return OutcomeRecord(
            outcome_id=f"e2e-{digest[:32]}",
            template_ids=self.template_ids,
            score=self.score_with,
            baseline_score=self.score_without,
            query=self.query,
            task=self.task,
            index_version=self.index_version,
            model=self.model,
        )


@dataclass(frozen=True)
class TaskEffect:
    """Accuracy without and with templates, and the change with its bootstrap 95% interval."""

    count: int
    without: float
    with_templates: float
    change: float
    change_low: float
    change_high: float


def answer_queries(
    queries: Sequence[LabeledQuery],
    retriever: RetrievalEngine,
    model: BaseChatModel,
    k: int,
    model_name: str = "",
) -> tuple[list[AnsweredQuery], int]:
    """Answer and score every query whose metric is supported; return rows and skipped count.
    ``model_name`` names ``model`` in the rows (and in outcomes replayed from them)."""
    rows, skipped = [], 0
    for query in queries:
        scorer = scorer_for(query.metric)
        if scorer is None:
            skipped += 1
            continue
        request = RetrievalQuery(query.query, k=k, exclude_same_query=True)
        augmented = retriever.augment(request)
        plain = build_augmented_prompt(query.query, ())
        top = augmented.hits[0] if augmented.hits else None
        rows.append(
            AnsweredQuery(
                task=query.task,
                metric=query.metric,
                score_without=scorer(_ask(model, plain), query.ground_truth),
                score_with=scorer(_ask(model, augmented.prompt), query.ground_truth),
                top_score=top.score if top else float("nan"),
                top_task=top.template.task if top else "",
                query=query.query,
                template_ids=tuple(hit.template.id for hit in augmented.hits),
                index_version=augmented.index_version,
                model=model_name,
            )
        )
    return rows, skipped


def _ask(model: BaseChatModel, prompt: str) -> str:
    return model.invoke([HumanMessage(prompt)]).text


def bootstrap_interval(gains: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean paired gain."""
    rng = np.random.default_rng(seed)
    means = gains[rng.integers(0, len(gains), (BOOTSTRAP_SAMPLES, len(gains)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def task_effects(rows: Sequence[AnsweredQuery]) -> dict[str, TaskEffect]:
    """Per task and ``overall``: accuracy without/with templates and the paired change."""
    groups: dict[str, list[AnsweredQuery]] = {"overall": list(rows)}
    for row in rows:
        groups.setdefault(row.task, []).append(row)
    effects = {}
    for name, members in sorted(groups.items()):
        if not members:
            continue
        gains = np.array([m.gain for m in members])
        low, high = bootstrap_interval(gains)
        effects[name] = TaskEffect(
            count=len(members),
            without=float(np.mean([m.score_without for m in members])),
            with_templates=float(np.mean([m.score_with for m in members])),
            change=float(gains.mean()),
            change_low=low,
            change_high=high,
        )
    return effects


def write_rows(path: Path, rows: Sequence[AnsweredQuery]) -> None:
    path.write_text("".join(json.dumps(asdict(row)) + "\n" for row in rows))


def read_rows(path: Path) -> list[AnsweredQuery]:
    """Rows written by ``write_rows``; a damaged line is an error naming it."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        try:
            data = json.loads(line)
            data["template_ids"] = tuple(data.get("template_ids", ()))
            rows.append(AnsweredQuery(**data))
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}:{number}: not an e2e result row: {exc}") from exc
    return rows
