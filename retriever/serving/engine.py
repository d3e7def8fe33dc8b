"""In-process retrieval over a loaded index: the semantics the server exposes over gRPC.

``RetrievalEngine`` validates requests, embeds their queries in one batch and searches FAISS
in as few batched calls as the requests allow (one per task filter and per-request search
parameters). Candidates then pass one place, ``_rank``, where they are filtered (exclusions,
``min_score``) and selected (top-k or MMR): scoring extensions belong there.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from langchain_core.prompts import PromptTemplate

from thoughtbank.echo import clip, echo
from thoughtbank.index import (
    Embedder,
    IdFilter,
    IndexManifest,
    LoadedIndex,
    load_index,
    manifest_backend,
    manifest_embedder,
    template_int_id,
    verify_embedder,
)
from thoughtbank.index.history import HeldTemplateIds
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.normalize import normalize_query
from thoughtbank.retriever.errors import (
    InvalidRequestError,
    TemplateNotFoundError,
    ThoughtbankError,
)
from thoughtbank.retriever.prompt import (
    DEFAULT_PROMPT,
    build_augmented_prompt,
    check_prompt_template,
    fit_token_budget,
)
from thoughtbank.retriever.serving.conversions import ResponseBound, template_pb_bytes
from thoughtbank.retriever.serving.feedback import UsefulnessRanking
from thoughtbank.retriever.serving.sanitize import DEFAULT_MAX_TEMPLATE_CHARS, sanitize_template
from thoughtbank.retriever.serving.task_routing import TaskRouting, route_task
from thoughtbank.retriever.types import (
    MAX_EF_SEARCH,
    MAX_EXCLUDE_IDS,
    MAX_K,
    AugmentedPrompt,
    IndexInfo,
    RetrievalQuery,
    RetrievalResult,
    ScoredTemplate,
)
from thoughtbank.schema import OutcomeError, OutcomeRecord, ThoughtTemplate

T = TypeVar("T")

DEFAULT_MAX_QUERY_CHARS = 32_768
DEFAULT_ROUTING = TaskRouting()
WARM_UP_BATCH_SIZES = (1, 1, 1, 2, 4, 8, 16, 32)
# MMR and outcome evidence re-rank a pool this many times k (at least MIN_RERANK_POOL), so
# that diverse or proven hits can surface from among the nearest.
RERANK_POOL_FACTOR = 4
MIN_RERANK_POOL = 20
# A request routed to a task looks for its hits among this many nearest templates of any task.
SCOPED_FETCH = 32


@dataclass(frozen=True)
class EmbeddingChoice:
    """The embedding backend and precision a server asks for; None keeps the index's."""

    backend: str | None = None
    precision: str | None = None

    def resolved(self, manifest: IndexManifest) -> tuple[str, str, str]:
        """(model, backend, precision) an engine on ``manifest``'s version embeds with."""
        return (manifest.embedder, *manifest_backend(manifest, self.backend, self.precision))


SAME_AS_INDEX = EmbeddingChoice()


@dataclass(frozen=True)
class Candidate:
    """One FAISS hit before filtering: template id and similarity to the query."""

    int_id: int
    score: float


@dataclass(frozen=True)
class TaskGuess:
    """The task predicted for a request that names none ("" when nothing was predicted)."""

    task: str = ""
    confidence: float = 0.0


@dataclass(frozen=True)
class _SearchKey:
    """Requests sharing a key are searched in one FAISS call."""

    task: str
    ef_search: int | None
    nprobe: int | None


def all_or_first_error(
    outcomes: Sequence[RetrievalResult | ThoughtbankError],
) -> list[RetrievalResult]:
    """The results of a batch, or raise the first request's error naming its position."""
    for position, outcome in enumerate(outcomes):
        if isinstance(outcome, ThoughtbankError):
            prefix = f"request {position}: " if len(outcomes) > 1 else ""
            raise type(outcome)(prefix + outcome.message, outcome.code)
    return list(outcomes)  # type: ignore[arg-type]  # no errors left


class RetrievalEngine:
    """Retrieval over one ``LoadedIndex`` with the embedder that built it.

    Immutable once built, so a server can swap in a new one (``reloaded``) while requests
    already running finish on this one.
    """

    def __init__(
        self,
        index: LoadedIndex,
        embedder: Embedder,
        max_query_chars: int = DEFAULT_MAX_QUERY_CHARS,
        prompt_template: PromptTemplate = DEFAULT_PROMPT,
        max_template_chars: int = DEFAULT_MAX_TEMPLATE_CHARS,
        routing: TaskRouting = DEFAULT_ROUTING,
        embedding: EmbeddingChoice = SAME_AS_INDEX,
        previous: RetrievalEngine | None = None,
        feedback: UsefulnessRanking | None = None,
    ) -> None:
        """``previous``: an engine on an earlier version, whose work on the templates this
        version shares with it is reused. ``feedback``: outcome evidence that re-ranks hits
        (None: similarity alone)."""
        self.feedback = feedback
        verify_embedder(index.manifest, embedder)
        self.embedding = embedding
        self.routing = routing
        self.index = index
        self.embedder = embedder
        self.max_query_chars = max_query_chars
        self.prompt_template = check_prompt_template(prompt_template)
        self.max_template_chars = max_template_chars
        self._served, self._pb_bytes = self._prepare(index, previous)
        self._task_filters = {
            task: IdFilter(np.array(ids, dtype=np.int64))
            for task, ids in self._group_ids(self._served, lambda t: t.task).items()
        }
        self._held: HeldTemplateIds = (
            previous._held if previous is not None else HeldTemplateIds(self.index_dir)
        )
        if self._held.used:  # read the new versions here, in the loader, not on a request
            self._held.refresh()
        # Computed at load, off the serving path, from every template's serialized size.
        self.response_bound = ResponseBound.of(
            self._pb_bytes.tolist(), index.version, self._task_filters
        )

    def _prepare(
        self, index: LoadedIndex, previous: RetrievalEngine | None
    ) -> tuple[dict[int, ThoughtTemplate], np.ndarray]:
        """Each template sanitized (the one served, by id) and its serialized size (by row,
        for the response bound); both taken from ``previous`` where it loaded the very same
        template (``load_index`` shares unchanged ones between versions)."""
        same = (
            previous
            if previous is not None and previous.max_template_chars == self.max_template_chars
            else None
        )
        earlier = same.index.templates if same is not None else {}
        served: dict[int, ThoughtTemplate] = {}
        sizes = np.zeros(len(index.int_ids), dtype=np.int64)
        reused_rows, reused_ids = [], []
        for row, (int_id, loaded) in enumerate(index.templates.items()):
            if same is not None and earlier.get(int_id) is loaded:
                served[int_id] = same._served[int_id]
                reused_rows.append(row)
                reused_ids.append(int_id)
            else:
                served[int_id] = sanitize_template(loaded, self.max_template_chars)
                sizes[row] = template_pb_bytes(served[int_id])
        if same is not None and reused_ids:
            sizes[reused_rows] = same._pb_bytes[same.index.rows_of(reused_ids)]
        return served, sizes

    @classmethod
    def open(
        cls,
        index_dir: Path,
        embedder: Embedder | None = None,
        version: str | None = None,
        **settings: Any,
    ) -> RetrievalEngine:
        """Load ``version`` (default: the live one) with its own embedder unless one is given.

        ``settings`` are the constructor's keyword arguments (``max_query_chars``, ...).
        """
        return cls.of_index(load_index(index_dir, version), embedder, **settings)

    @classmethod
    def of_index(
        cls, index: LoadedIndex, embedder: Embedder | None = None, **settings: Any
    ) -> RetrievalEngine:
        """An engine on ``index``: with ``embedder``, or the one ``settings["embedding"]``
        chooses for it (by default the backend and precision that built it)."""
        if embedder is None:
            embedding = settings.get("embedding", SAME_AS_INDEX)
            embedder = manifest_embedder(index.manifest, embedding.backend, embedding.precision)
        return cls(index, embedder, **settings)

    def reloaded(
        self,
        index_dir: Path,
        version: str,
        embedder_for: Callable[[IndexManifest], Embedder] | None = None,
    ) -> RetrievalEngine:
        """A retriever for another version with the same settings (and embedder, when the
        version asks for the same model, backend and precision; else ``embedder_for``'s, or
        one loaded for it)."""
        index = load_index(index_dir, version, previous=self.index)
        wanted = self.embedding.resolved(index.manifest)
        current = (self.embedder.model_id, self.embedder.backend, self.embedder.precision)
        if wanted == current:
            embedder: Embedder | None = self.embedder
        else:
            embedder = embedder_for(index.manifest) if embedder_for else None
        return RetrievalEngine.of_index(
            index,
            embedder,
            max_query_chars=self.max_query_chars,
            prompt_template=self.prompt_template,
            max_template_chars=self.max_template_chars,
            routing=self.routing,
            embedding=self.embedding,
            previous=self,
            feedback=self.feedback,
        )

    def warm_up(self, model: bool = True) -> None:
        """Run a few batches of varied sizes and lengths: the model's first calls at each input
        shape are slow, and they should not be a client's. ``model=False``, for an embedder
        that already served, runs one request: the new index's first search and routing."""
        for size in WARM_UP_BATCH_SIZES if model else (1,):
            queries = [RetrievalQuery("warm-up question " * (1 + i % 8)) for i in range(size)]
            self.retrieve_batch(queries)

    @staticmethod
    def _group_ids(items: dict[int, T], key: Callable[[T], str]) -> dict[str, list[int]]:
        """Template ids by ``key`` (task, normalized query)."""
        grouped: dict[str, list[int]] = defaultdict(list)
        for int_id, item in items.items():
            grouped[key(item)].append(int_id)
        return dict(grouped)

    @functools.cached_property
    def _query_ids(self) -> dict[str, list[int]]:
        """Template ids by normalized source query, for ``exclude_same_query``: built on its
        first use, as evaluation alone asks for it and each namespace would hold it."""
        return self._group_ids(self.index.templates, lambda t: normalize_query(t.source_query))

    @property
    def version(self) -> str:
        return self.index.version

    @property
    def size(self) -> int:
        return len(self._served)

    def validate(self, request: RetrievalQuery) -> None:
        """Raise ``InvalidRequestError`` saying what is wrong with ``request``."""
        if not request.query.strip():
            raise InvalidRequestError("query must not be empty")
        if len(request.query) > self.max_query_chars:
            raise InvalidRequestError(
                f"query has {len(request.query)} characters, over the limit of "
                f"{self.max_query_chars}"
            )
        if not 1 <= request.k <= MAX_K:
            raise InvalidRequestError(f"k must be between 1 and {MAX_K}, got {request.k}")
        if request.task_strict and not request.task:
            raise InvalidRequestError("task_strict needs a task")
        if request.task_strict and request.task not in self._task_filters:
            raise InvalidRequestError(
                f"unknown task {echo(request.task)}; the index has: "
                f"{clip(', '.join(sorted(self._task_filters)))}"
            )
        if not 0.0 <= request.diversity <= 1.0:
            raise InvalidRequestError(
                f"diversity (MMR lambda) must be in [0, 1], got {request.diversity}"
            )
        if request.min_score is not None and not math.isfinite(request.min_score):
            raise InvalidRequestError(f"min_score must be a finite number, got {request.min_score}")
        if len(request.exclude_ids) > MAX_EXCLUDE_IDS:
            raise InvalidRequestError(
                f"exclude_ids has {len(request.exclude_ids)} ids, over the limit of "
                f"{MAX_EXCLUDE_IDS}"
            )
        for name in ("ef_search", "nprobe"):
            value = getattr(request, name)
            if value is not None and value < 1:
                raise InvalidRequestError(f"{name} must be at least 1 when set, got {value}")
        if request.ef_search is not None and request.ef_search > MAX_EF_SEARCH:
            raise InvalidRequestError(
                f"ef_search {request.ef_search} is over the limit of {MAX_EF_SEARCH}"
            )

    def retrieve(self, request: RetrievalQuery) -> RetrievalResult:
        return self.retrieve_batch([request])[0]

    def retrieve_batch(self, requests: Sequence[RetrievalQuery]) -> list[RetrievalResult]:
        """All results, or the first request's error (prefixed with its position) if any fails."""
        return all_or_first_error(self.retrieve_each(requests))

    def retrieve_each(
        self, requests: Sequence[RetrievalQuery]
    ) -> list[RetrievalResult | ThoughtbankError]:
        """One outcome per request: invalid ones get their error, the rest share one batch."""
        outcomes: list[RetrievalResult | ThoughtbankError | None] = []
        for request in requests:
            try:
                self.validate(request)
                outcomes.append(None)
            except InvalidRequestError as exc:
                outcomes.append(exc)
        valid = [i for i, outcome in enumerate(outcomes) if outcome is None]
        vectors = self.embedder.encode([requests[i].query for i in valid])
        results = self.search_vectors([requests[i] for i in valid], vectors)
        for position, result in zip(valid, results, strict=True):
            outcomes[position] = result
        return outcomes  # type: ignore[return-value]  # every None was replaced

    def search_vectors(
        self, requests: Sequence[RetrievalQuery], vectors: np.ndarray
    ) -> list[RetrievalResult]:
        """Retrieve for already embedded, validated requests (row i of ``vectors`` is request i)."""
        excluded = [self._excluded(r) for r in requests]
        fetches = [self._fetch_size(r, ex) for r, ex in zip(requests, excluded, strict=True)]
        guesses = self._guess_tasks(requests, vectors)
        scopes = [self._scope(r, g) for r, g in zip(requests, guesses, strict=True)]
        candidates = self._batched_search(requests, vectors, scopes, fetches)
        fallback = [
            i
            for i, r in enumerate(requests)
            if scopes[i]
            and not r.task_strict
            and len(self._filter(r, candidates[i], excluded[i])) < r.k
        ]
        if fallback:
            self._fill_from_all_tasks(requests, vectors, fetches, candidates, fallback)
        return [
            self._rank(r, candidates[i], excluded[i], guesses[i]) for i, r in enumerate(requests)
        ]

    def _guess_tasks(
        self, requests: Sequence[RetrievalQuery], vectors: np.ndarray
    ) -> list[TaskGuess]:
        """Predict the task of each request that names none, with the index's classifier."""
        guesses = [TaskGuess()] * len(requests)
        unnamed = [i for i, r in enumerate(requests) if not r.task]
        classifier = self.index.task_classifier
        if classifier is None or not unnamed:
            return guesses
        prediction = classifier.predict([requests[i].query for i in unnamed], vectors[unnamed])
        for i, task, confidence in zip(
            unnamed, prediction.tasks, prediction.confidences, strict=True
        ):
            guesses[i] = TaskGuess(task, float(confidence))
        return guesses

    def _scope(self, request: RetrievalQuery, guess: TaskGuess) -> str:
        """The task searched first: the named one, else a confident guess, else all tasks."""
        task = request.task or route_task(
            guess.task, guess.confidence, self.routing, self.index.manifest.unrouted_tasks
        )
        return task if task in self._task_filters else ""

    def _pool_size(self, request: RetrievalQuery) -> int:
        """How many usable candidates are ranked: k, or a re-ranking pool when diversity is
        set or outcome evidence re-ranks."""
        if request.diversity > 0 or (self.feedback is not None and self.feedback.active):
            return max(request.k * RERANK_POOL_FACTOR, MIN_RERANK_POOL)
        return request.k

    def _fetch_size(self, request: RetrievalQuery, excluded: set[int]) -> int:
        """Nearest templates to fetch so that the pool is full once exclusions are filtered."""
        return self._pool_size(request) + len(excluded)

    def _fill_from_all_tasks(
        self,
        requests: Sequence[RetrievalQuery],
        vectors: np.ndarray,
        fetches: list[int],
        candidates: list[list[Candidate]],
        positions: list[int],
    ) -> None:
        """Append other tasks' candidates after the preferred task's for ``positions``."""
        subset = [requests[i] for i in positions]
        extra = self._search(
            subset,
            vectors[positions],
            [""] * len(positions),
            [fetches[i] + len(candidates[i]) for i in positions],
        )
        for i, more in zip(positions, extra, strict=True):
            seen = {c.int_id for c in candidates[i]}
            candidates[i].extend(c for c in more if c.int_id not in seen)

    def _batched_search(
        self,
        requests: Sequence[RetrievalQuery],
        vectors: np.ndarray,
        scopes: list[str],
        fetches: list[int],
    ) -> list[list[Candidate]]:
        """Up to ``fetches[i]`` nearest templates of request i's scope (any task when unscoped).

        A scoped request first takes its task's share of the ``SCOPED_FETCH`` nearest templates
        of any task, which costs what its top-k would (FAISS's work depends on ef_search, nprobe
        or the index size, not on k). Only when that share is short does it search again with
        the task's ID filter, which on HNSW costs twice an unfiltered search.
        """
        widened = [
            max(fetch, SCOPED_FETCH) if scope else fetch
            for scope, fetch in zip(scopes, fetches, strict=True)
        ]
        nearest = self._search(requests, vectors, [""] * len(requests), widened)
        found: list[list[Candidate]] = []
        for scope, fetch, candidates in zip(scopes, fetches, nearest, strict=True):
            if scope:
                candidates = [c for c in candidates if self._served[c.int_id].task == scope]
            found.append(candidates[:fetch])
        short = [i for i, scope in enumerate(scopes) if scope and len(found[i]) < fetches[i]]
        if short:
            filtered = self._search(
                [requests[i] for i in short],
                vectors[short],
                [scopes[i] for i in short],
                [fetches[i] for i in short],
            )
            for i, candidates in zip(short, filtered, strict=True):
                found[i] = candidates
        return found

    def _search(
        self,
        requests: Sequence[RetrievalQuery],
        vectors: np.ndarray,
        scopes: list[str],
        fetches: list[int],
    ) -> list[list[Candidate]]:
        """Candidates per request, searching each group of compatible requests in one call."""
        groups: dict[_SearchKey, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            groups[_SearchKey(scopes[i], request.ef_search, request.nprobe)].append(i)
        found: list[list[Candidate]] = [[] for _ in requests]
        for key, members in groups.items():
            scores, ids = self.index.search(
                vectors[members],
                max(fetches[i] for i in members),
                allowed_ids=self._task_filters[key.task] if key.task else None,
                ef_search=key.ef_search,
                nprobe=key.nprobe,
            )
            for row, i in enumerate(members):
                found[i] = [
                    Candidate(int(int_id), float(score))
                    for score, int_id in zip(scores[row], ids[row], strict=True)
                    if int_id >= 0
                ][: fetches[i]]
        return found

    def _excluded(self, request: RetrievalQuery) -> set[int]:
        """Exclusions the index holds: an unknown id can never be a hit, so it costs no fetch."""
        excluded = {template_int_id(i) for i in request.exclude_ids} & self._served.keys()
        if request.exclude_same_query:
            excluded.update(self._query_ids.get(normalize_query(request.query), ()))
        return excluded

    def _filter(
        self, request: RetrievalQuery, candidates: list[Candidate], excluded: set[int]
    ) -> list[Candidate]:
        return [
            c
            for c in candidates
            if c.int_id not in excluded and c.score >= self._min_score(request, c)
        ]

    def _min_score(self, request: RetrievalQuery, candidate: Candidate) -> float:
        """The request's ``min_score``, else the calibrated one of the template's task."""
        if request.min_score is not None:
            return request.min_score
        task = self._served[candidate.int_id].task
        return self.index.manifest.min_scores.get(task, -math.inf)

    def _rank(
        self,
        request: RetrievalQuery,
        candidates: list[Candidate],
        excluded: set[int],
        guess: TaskGuess,
    ) -> RetrievalResult:
        """Filter candidates, then pick k of them: in order, or by MMR when diversity is set.

        MMR compares every pair of the pool, so the pool is cut to ``_pool_size`` whatever the
        fetch was (a fallback search can bring more).
        """
        usable = self._filter(request, candidates, excluded)
        if self.feedback is not None:
            usable = self.feedback.rerank(usable)
        usable = usable[: self._pool_size(request)]
        if request.diversity > 0:
            chosen = self._mmr(usable, request.k, request.diversity)
        else:
            chosen = usable[: request.k]
        hits = tuple(ScoredTemplate(self._served[c.int_id], c.score, self.version) for c in chosen)
        return RetrievalResult(
            hits=hits,
            index_version=self.version,
            predicted_task=guess.task,
            predicted_task_confidence=guess.confidence,
        )

    def _mmr(self, candidates: list[Candidate], k: int, diversity: float) -> list[Candidate]:
        """Maximal marginal relevance: trade similarity to the query for novelty.

        Each step picks the candidate maximizing ``(1 - diversity) * score - diversity *
        (max similarity to those already picked)``, on the index's stored embeddings.
        """
        if len(candidates) <= 1:
            return candidates[:k]
        embeddings = self.index.embeddings_of([c.int_id for c in candidates])
        pairwise = embeddings @ embeddings.T
        relevance = np.array([c.score for c in candidates])
        chosen: list[int] = []
        redundancy = np.full(len(candidates), -np.inf)
        while len(chosen) < min(k, len(candidates)):
            penalty = np.where(np.isinf(redundancy), 0.0, redundancy)
            marginal = (1 - diversity) * relevance - diversity * penalty
            marginal[chosen] = -np.inf
            pick = int(np.argmax(marginal))
            chosen.append(pick)
            redundancy = np.maximum(redundancy, pairwise[pick])
        return [candidates[i] for i in chosen]

    def augment(
        self, request: RetrievalQuery, max_template_tokens: int | None = None
    ) -> AugmentedPrompt:
        """The FusionFactory prompt; ``max_template_tokens`` drops the lowest-scored first."""
        return self.augment_result(request, self.retrieve(request), max_template_tokens)

    def augment_result(
        self,
        request: RetrievalQuery,
        result: RetrievalResult,
        max_template_tokens: int | None = None,
    ) -> AugmentedPrompt:
        """The prompt for an already retrieved ``result`` (the server retrieves in batches)."""
        hits = result.hits
        if max_template_tokens is not None:
            hits = fit_token_budget(hits, max_template_tokens, self.count_tokens)
        prompt = build_augmented_prompt(request.query, hits, self.prompt_template)
        return AugmentedPrompt(prompt=prompt, hits=hits, index_version=result.index_version)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the embedder's tokenizer: a model-neutral budget measure."""
        return self.embedder.count_tokens(text)

    @property
    def index_dir(self) -> Path:
        return self.index.path.parent.parent

    def check_outcomes(self, records: Sequence[OutcomeRecord], batch: bool = False) -> None:
        """``InvalidRequestError`` naming the first outcome field that is bad or names a
        template no version of the index folder has held (with its position when ``batch``).
        """
        for n, record in enumerate(records):
            where = f"outcomes[{n}]." if batch else ""
            try:
                record.check()
            except OutcomeError as exc:
                raise InvalidRequestError(f"{where}{exc}") from exc
            unknown = [t for t in record.template_ids if self._find(t) is None]
            if unknown:
                unknown = self._held.unknown(unknown)
            if unknown:
                raise InvalidRequestError(
                    f"{where}template_ids: {echo(', '.join(unknown))} not in any index version"
                )

    def record_outcomes(self, records: Sequence[OutcomeRecord]) -> list[bool]:
        """Check and store ``records`` durably in the index folder's outcome store; per record,
        whether it is new (a retried ``outcome_id`` is not counted twice)."""
        self.check_outcomes(records, batch=len(records) > 1)
        return self._outcomes.record(records)

    @functools.cached_property
    def _outcomes(self) -> OutcomeStore:
        return OutcomeStore(self.index_dir)

    def get_template(self, template_id: str) -> ThoughtTemplate:
        if not template_id:
            raise InvalidRequestError("id must not be empty")
        template = self._find(template_id)
        if template is None:
            raise TemplateNotFoundError(f"no template with id {echo(template_id)}")
        return template

    def _find(self, template_id: str) -> ThoughtTemplate | None:
        """The served template of that id, if this version holds it."""
        template = self._served.get(template_int_id(template_id))
        return template if template is not None and template.id == template_id else None

    def info(self) -> IndexInfo:
        manifest = self.index.manifest
        return IndexInfo(
            index_version=manifest.version,
            count=manifest.count,
            task_counts=dict(manifest.task_counts),
            embedder=manifest.embedder,
            dimension=manifest.dimension,
            index_type=manifest.index_type,
            metric=manifest.metric,
            created_at=manifest.created_at,
            manifest=asdict(manifest),
        )
