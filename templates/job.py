"""The mining job: logs -> groups -> selected responses -> templates, durable and resumable.

Rows stream from the logs into an on-disk spool that hands back one group at a time. Groups are
distilled by a ``DistillEngine``: by default a pool of ``workers`` threads (LLM calls wait on the
network, not the CPU) with a bounded number in flight, so memory does not grow with the number
of groups; ``ray_engine.RayEngine`` runs them on a Ray cluster instead. Every finished
group is appended to a journal (``OUT.journal``) as one JSON line, in the order groups finish,
so a killed job loses nothing it finished; ``resume=True`` skips journaled groups and retries
failed ones. The final output is rebuilt from the journal, near-duplicates merged and sorted,
so the same logs and options give the same file whatever the order groups finished in; the
merge's clusters are kept in ``OUT.merge`` so that a resumed job does not embed again.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from tqdm import tqdm

from thoughtbank.progress import progress_bar, with_progress
from thoughtbank.templates.distill import Distillation, Distiller, DistillRequest, LLMUsage
from thoughtbank.templates.journal import Journal, JournalEntry, journal_path
from thoughtbank.templates.leakage import Leak, LeakageGuard
from thoughtbank.templates.merge import (
    DEFAULT_MERGE_THRESHOLD,
    EmbedFunction,
    apply_clusters,
    near_duplicate_clusters,
)
from thoughtbank.templates.merge_cache import (
    load_clusters,
    merge_cache_path,
    merge_key,
    save_clusters,
)
from thoughtbank.templates.readers import (
    DEFAULT_MAX_FIELD_BYTES,
    RejectSink,
    check_log_paths,
    iter_log_records,
)
from thoughtbank.templates.schema import LogRecord, SourceResponse, ThoughtTemplate, template_id
from thoughtbank.templates.selection import (
    QueryGroup,
    SelectionRules,
    Strategy,
    failed_responses,
    select_top_responses,
)
from thoughtbank.templates.spool import GroupSpool
from thoughtbank.templates.store import write_templates
from thoughtbank.templates.task_profile import TaskProfile, learn_task_profiles
from thoughtbank.text_safety import strip_control

PITFALL_EXAMPLES = 3
#: Groups queued per worker: enough to keep workers busy, few enough to bound memory.
IN_FLIGHT_PER_WORKER = 4


class LeakagePolicy(str, Enum):
    """What to do with a template that still leaks after being asked for once more."""

    FLAG = "flag"
    DROP = "drop"


@dataclass(frozen=True)
class MiningOptions:
    """How a mining job selects, distils, guards and merges (see ``thoughtbank mine --help``)."""

    strategy: Strategy = Strategy.FUSION
    top_n: int = 3
    rules: SelectionRules = field(default_factory=SelectionRules)
    pitfalls: bool = False
    leakage: LeakagePolicy = LeakagePolicy.FLAG
    guard: LeakageGuard = field(default_factory=LeakageGuard)
    merge_threshold: float = DEFAULT_MERGE_THRESHOLD
    workers: int = 1
    resume: bool = False
    column_map: dict[str, str] | None = None
    performance_scale: float = 1.0
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES
    rejects_path: Path | None = None
    spool_dir: Path | None = None
    progress: bool = False

    def fingerprint(self, paths: list[Path], distiller: Distiller | DistillEngine) -> str:
        """Hash of everything that shapes the journaled templates; a journal only resumes its
        own job, on either engine. (Merging runs after the journal, so its threshold may change
        on resume.)"""
        shaping = {k: v for k, v in asdict(self).items() if k not in _NOT_IN_FINGERPRINT}
        payload = json.dumps(
            [shaping, [str(p.resolve()) for p in paths], distiller.name, distiller.version],
            sort_keys=True,
            default=_canonical,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


_NOT_IN_FINGERPRINT = frozenset(
    {"merge_threshold", "workers", "resume", "rejects_path", "spool_dir", "progress"}
)


def _canonical(value: object) -> object:
    """JSON for the option values json does not know: sets sorted (their order varies)."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


@dataclass
class MiningSummary:
    """What the job did; printed at the end of ``thoughtbank mine``.

    ``groups`` counts distinct (task, normalized query); ``query_ids`` the logs' query ids,
    which is larger where a log repeats one query under several ids.
    """

    rows_read: int = 0
    rows_rejected: int = 0
    files_damaged: int = 0
    query_ids: int = 0
    groups: int = 0
    groups_resumed: int = 0
    groups_without_eligible_response: int = 0
    templates: int = 0
    merged: int = 0
    failed: int = 0
    leakage_flagged: int = 0
    leakage_dropped: int = 0
    llm_calls: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    groups_per_actor: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The counts; ``groups_per_actor`` only where a cluster engine ran the job."""
        return {
            k: v
            for k, v in asdict(self).items()
            if k != "failures" and (k != "groups_per_actor" or v)
        }


def group_key(group: QueryGroup) -> str:
    """Stable id of a group, used by the journal to recognise finished work."""
    task, query = group.key
    return hashlib.sha256(f"{task}\x00{query}".encode()).hexdigest()[:20]


def build_template(
    group: QueryGroup,
    selected: list[LogRecord],
    distiller: Distiller,
    distillation: Distillation,
    flags: tuple[str, ...] = (),
) -> ThoughtTemplate:
    """The template of ``distillation`` with the provenance of every response used.

    The distilled texts lose control characters and escape sequences here, so no later reader
    of the templates file (a terminal, an editor) gets them; the source query is kept as
    logged, since the server matches it to the queries it excludes.
    """
    fields = distillation.fields.map_texts(strip_control)
    text = fields.render()
    models = tuple(dict.fromkeys(r.llm for r in selected))
    return ThoughtTemplate(
        id=template_id(group.task, group.query, text, models),
        task=group.task,
        text=text,
        source_query=group.query,
        source_models=models,
        source_query_ids=tuple(sorted({r.query_id for r in group.records if r.query_id})),
        sources=tuple(
            SourceResponse(r.llm, r.performance, r.cost, r.llm_judge, r.query_id) for r in selected
        ),
        fields=fields,
        pitfalls=strip_control(distillation.pitfalls),
        distiller=distiller.name,
        distiller_version=distiller.version,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        flags=flags,
    )


def _ground_truth(group: QueryGroup) -> str:
    return next((r.ground_truth for r in group.records if r.ground_truth), "")


def _leaks(guard: LeakageGuard, group: QueryGroup, distillation: Distillation) -> tuple[Leak, ...]:
    """Leaks in what the distiller wrote (not the rendering: its step numbers are no answer)."""
    fields = distillation.fields
    written = [
        fields.task_summary,
        *fields.reasoning_steps,
        fields.answer_format,
        distillation.pitfalls,
    ]
    return guard.find("\n".join(written), group.query, _ground_truth(group))


def _guarded_distillation(
    group: QueryGroup, request: DistillRequest, distiller: Distiller, guard: LeakageGuard
) -> tuple[Distillation, tuple[str, ...]]:
    """Distil; if the result leaks, ask once more naming the leaks. Returns what still leaks."""
    distillation = distiller.distill(request)
    leaks = _leaks(guard, group, distillation)
    if leaks:
        distillation = distiller.distill(replace(request, avoid=leaks))
        leaks = _leaks(guard, group, distillation)
    return distillation, tuple(leak.describe() for leak in leaks)


def mine_group(
    group: QueryGroup,
    distiller: Distiller,
    options: MiningOptions,
    profile: TaskProfile | None = None,
) -> JournalEntry:
    """Select, distil and guard one group; the journal entry that records the outcome.

    ``profile`` is what was learnt about the group's whole task (answer format, boilerplate)."""
    key = group_key(group)
    selected = select_top_responses(group, options.strategy, options.top_n, options.rules)
    if not selected:
        return JournalEntry(key, "skipped", reason="no eligible response")
    failed = failed_responses(group, options.rules, PITFALL_EXAMPLES) if options.pitfalls else []
    request = DistillRequest(
        group.task, group.query, tuple(selected), tuple(failed), profile=profile
    )
    distillation, leaks = _guarded_distillation(group, request, distiller, options.guard)
    if leaks and options.leakage is LeakagePolicy.DROP:
        return JournalEntry(key, "dropped", reason="; ".join(leaks))
    template = build_template(group, selected, distiller, distillation, leaks)
    return JournalEntry(key, "ok", template=template.to_dict())


def mine_or_fail(
    group: QueryGroup,
    distiller: Distiller,
    options: MiningOptions,
    profiles: dict[str, TaskProfile],
) -> JournalEntry:
    """A failed group is journaled as failed (and retried by the next run), never raised."""
    try:
        return mine_group(group, distiller, options, profiles.get(group.task))
    except Exception as exc:  # any distiller error fails this group only
        where = f"{group.task}: {group.query[:60]!r}"
        return JournalEntry(group_key(group), "failed", f"{where}: {type(exc).__name__}: {exc}")


def rejects_file(options: MiningOptions, out_path: Path) -> Path:
    """Where the job writes its rejected rows: ``--rejects``, else ``OUT.rejects``."""
    return options.rejects_path or out_path.with_name(out_path.name + ".rejects")


def _spool_logs(
    paths: list[Path],
    spool: GroupSpool,
    options: MiningOptions,
    out_path: Path,
    summary: MiningSummary,
) -> None:
    rejects = RejectSink(rejects_file(options, out_path))
    try:
        records = iter_log_records(
            paths, rejects, options.column_map, options.performance_scale, options.max_field_bytes
        )
        spool.add_all(with_progress(records, "reading rows", "rows", options.progress))
    finally:
        rejects.close()
    summary.rows_read = spool.rows + rejects.count
    summary.rows_rejected = rejects.count
    summary.files_damaged = rejects.damaged_files


#: Called with each batch of finished groups, in the order they finish.
FinishedGroups = Callable[[list[JournalEntry]], None]


class DistillEngine(ABC):
    """Where a job's groups are distilled. ``name`` and ``version`` are its distiller's."""

    name: str
    version: str

    @abstractmethod
    def distil(
        self,
        groups: Iterator[QueryGroup],
        options: MiningOptions,
        profiles: dict[str, TaskProfile],
        finished: FinishedGroups,
    ) -> None:
        """Mine every group (``mine_or_fail``), handing each finished batch to ``finished``."""

    @abstractmethod
    def usage(self) -> LLMUsage:
        """The LLM calls this engine's distillers made."""

    def groups_per_actor(self) -> dict[str, int]:
        """Groups each worker process finished; empty where there is one process."""
        return {}


class LocalEngine(DistillEngine):
    """This process: a pool of ``options.workers`` threads sharing one distiller."""

    def __init__(self, distiller: Distiller) -> None:
        self.distiller = distiller
        self.name, self.version = distiller.name, distiller.version

    def distil(
        self,
        groups: Iterator[QueryGroup],
        options: MiningOptions,
        profiles: dict[str, TaskProfile],
        finished: FinishedGroups,
    ) -> None:
        limit = max(1, options.workers) * IN_FLIGHT_PER_WORKER
        in_flight: set[Future[JournalEntry]] = set()
        with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
            try:
                while True:
                    while len(in_flight) < limit and (group := next(groups, None)) is not None:
                        in_flight.add(
                            pool.submit(mine_or_fail, group, self.distiller, options, profiles)
                        )
                    if not in_flight:
                        return
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    finished([future.result() for future in done])
            except BaseException:
                # Interrupted: stop at the groups already running rather than mine the queue.
                pool.shutdown(cancel_futures=True)
                raise

    def usage(self) -> LLMUsage:
        return self.distiller.usage()


def _journaling(journal: Journal, progress: tqdm[Any]) -> FinishedGroups:
    def finished(entries: list[JournalEntry]) -> None:
        journal.append(entries)
        progress.update(len(entries))

    return finished


def _merge(
    templates: list[ThoughtTemplate],
    embed: EmbedFunction,
    options: MiningOptions,
    out_path: Path,
) -> list[ThoughtTemplate]:
    """Near-duplicates merged; a resumed job reuses the clusters of its last finished merge."""
    cache = merge_cache_path(out_path)
    key = merge_key(templates, options.merge_threshold)
    clusters = load_clusters(cache, key, len(templates)) if options.resume else None
    if clusters is None:
        threshold, progress = options.merge_threshold, options.progress
        clusters = near_duplicate_clusters(templates, embed, threshold, progress)
        save_clusters(cache, key, clusters)
    return apply_clusters(templates, clusters)


def _finish(
    journal: Journal,
    embed: EmbedFunction | None,
    options: MiningOptions,
    engine: DistillEngine,
    out_path: Path,
    summary: MiningSummary,
) -> None:
    """Write the output from the journal and fill in the counts that come from it."""
    templates = journal.templates()
    summary.leakage_flagged = sum(1 for t in templates if t.flags)
    if embed is not None:
        merged = _merge(templates, embed, options, out_path)
        summary.merged, templates = len(templates) - len(merged), merged
    summary.templates = write_templates(out_path, templates)
    summary.groups_without_eligible_response = journal.count("skipped")
    summary.leakage_dropped = journal.count("dropped")
    summary.failures = journal.failures()
    summary.failed = len(summary.failures)
    usage = engine.usage()
    summary.llm_calls = usage.calls
    summary.input_tokens, summary.output_tokens = usage.input_tokens, usage.output_tokens
    summary.groups_per_actor = engine.groups_per_actor()


def mine_templates(
    log_paths: Iterable[Path],
    out_path: Path,
    distiller: Distiller | DistillEngine,
    options: MiningOptions | None = None,
    embed: EmbedFunction | None = None,
) -> MiningSummary:
    """Run the whole job and write the templates JSONL to ``out_path``.

    ``distiller`` runs on this process's threads unless it is an engine of its own (Ray's).
    ``embed`` (texts -> L2-normalizable vectors) enables merging near-duplicate templates.
    """
    options = options or MiningOptions()
    engine = distiller if isinstance(distiller, DistillEngine) else LocalEngine(distiller)
    paths = [Path(p) for p in log_paths]
    check_log_paths(paths)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    summary = MiningSummary()
    journal = Journal(journal_path(out_path), options.fingerprint(paths, engine), options.resume)
    try:
        with GroupSpool(options.spool_dir or out_path.parent) as spool:
            _spool_logs(paths, spool, options, out_path, summary)
            summary.groups = spool.group_count()
            summary.query_ids = spool.query_id_count()
            profiles = learn_task_profiles(spool.groups(), options.rules)
            pending = (g for g in spool.groups() if not journal.is_finished(group_key(g)))
            summary.groups_resumed = journal.finished_count()
            with progress_bar(
                "groups", "groups", options.progress, summary.groups, summary.groups_resumed
            ) as progress:
                engine.distil(pending, options, profiles, _journaling(journal, progress))
    finally:
        journal.close()
    _finish(journal, embed, options, engine, out_path, summary)
    return summary
