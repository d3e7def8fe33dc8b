"""Writing index versions: build from templates, add or replace templates, remove templates.

Every version's FAISS index is built from that version's stored embeddings, so ``add`` embeds
only the templates that are new and ``remove`` embeds nothing; ids are derived from template
ids, so a template keeps its 64-bit id in every version it is part of.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from thoughtbank.files import sha256_file
from thoughtbank.index.artifact import (
    IndexArtifactError,
    IndexManifest,
    LoadedIndex,
    SourceFile,
    VersionContent,
    current_version,
    index_lock,
    load_index,
    manifest_embedder,
    template_int_id,
    verify_embedder,
    write_version,
)
from thoughtbank.index.embedder import Embedder
from thoughtbank.index.faiss_backend import build_faiss_index, resolve_spec
from thoughtbank.index.task_classifier import TaskClassifier
from thoughtbank.index.task_routing import RoutingQuality, train_task_router
from thoughtbank.normalize import normalize_query
from thoughtbank.schema import ThoughtTemplate

log = logging.getLogger("thoughtbank.index")

EMBED_FIELDS = ("query", "query+template")
# Bounds the task classifier's training cost: above this many templates a per-task sample.
MAX_CLASSIFIER_EXAMPLES = 20_000


@dataclass(frozen=True)
class IndexSettings:
    """How templates are embedded and indexed; ``add`` and ``remove`` keep the parent's."""

    index_type: str = "auto"
    index_params: dict[str, int] = field(default_factory=dict)
    embed_field: str = "query"

    @classmethod
    def of(cls, manifest: IndexManifest) -> IndexSettings:
        return cls(manifest.index_type, dict(manifest.index_params), manifest.embed_field)


@dataclass(frozen=True)
class EmbedderIdentity:
    """What the manifest records about the embedder, so later checks can refuse another one."""

    model_id: str
    dimension: int
    fingerprint: str
    probes: list[list[float]]
    backend: str = "torch"
    precision: str = "fp32"
    model_sha256: str = ""

    @classmethod
    def of(cls, embedder: Embedder) -> EmbedderIdentity:
        probes = np.round(embedder.probe_vectors.astype(np.float64), 5).tolist()
        return cls(
            embedder.model_id,
            embedder.dimension,
            embedder.fingerprint(),
            probes,
            embedder.backend,
            embedder.precision,
            embedder.model_sha256,
        )

    @classmethod
    def of_manifest(cls, manifest: IndexManifest) -> EmbedderIdentity:
        return cls(
            manifest.embedder,
            manifest.dimension,
            manifest.embedder_fingerprint,
            manifest.embedder_probes,
            manifest.backend,
            manifest.precision,
            manifest.model_sha256,
        )


@dataclass(frozen=True)
class VersionDraft:
    """Everything a new version is made of, before it gets a name."""

    templates: list[ThoughtTemplate]
    vectors: np.ndarray
    embedder: EmbedderIdentity
    settings: IndexSettings
    sources: tuple[SourceFile, ...] = ()
    parent: str = ""


@dataclass(frozen=True)
class UpdateResult:
    """Outcome of ``add_templates``/``remove_templates``; ``manifest`` is the live version's."""

    manifest: IndexManifest
    added: int = 0
    replaced: int = 0
    removed: int = 0
    unchanged: int = 0
    #: Ids asked to be removed that the live version does not have (they changed nothing).
    not_found: tuple[str, ...] = ()

    @property
    def created_version(self) -> bool:
        return bool(self.added or self.removed)


def embedding_text(template: ThoughtTemplate, embed_field: str) -> str:
    """What is embedded for a template: its source query, optionally with the template text."""
    if embed_field == "query+template":
        return f"{template.source_query}\n{template.text}"
    return template.source_query


def embed_templates(
    templates: Sequence[ThoughtTemplate],
    embedder: Embedder,
    embed_field: str,
    show_progress: bool = False,
) -> np.ndarray:
    if embed_field not in EMBED_FIELDS:
        raise ValueError(f"unknown embed field {embed_field!r}; expected one of {EMBED_FIELDS}")
    log.info("embedding %d templates (%s) with %s", len(templates), embed_field, embedder.model_id)
    return embedder.encode([embedding_text(t, embed_field) for t in templates], show_progress)


def source_files(paths: Iterable[Path]) -> tuple[SourceFile, ...]:
    """Content hashes of the templates files a version was made from."""
    return tuple(SourceFile(str(Path(p).resolve()), sha256_file(Path(p))) for p in paths)


def _unique(templates: Iterable[ThoughtTemplate]) -> list[ThoughtTemplate]:
    return list({t.id: t for t in templates}.values())


def _commit(
    index_dir: Path, draft: VersionDraft, device: str, show_progress: bool
) -> IndexManifest:
    """Index the draft's vectors, write it as a new version and make it live."""
    spec = resolve_spec(
        draft.settings.index_type, len(draft.templates), draft.settings.index_params
    )
    log.info(
        "building %s index over %d vectors %s",
        spec.index_type,
        len(draft.vectors),
        spec.params or "",
    )
    ids = np.array([template_int_id(t.id) for t in draft.templates], dtype=np.int64)
    faiss_index = build_faiss_index(draft.vectors, ids, spec, device, show_progress)
    classifier, routing = _train_task_router(draft)

    def manifest_for(version: str, files: dict[str, str]) -> IndexManifest:
        return IndexManifest(
            version=version,
            embedder=draft.embedder.model_id,
            dimension=draft.embedder.dimension,
            embedder_fingerprint=draft.embedder.fingerprint,
            embedder_probes=draft.embedder.probes,
            backend=draft.embedder.backend,
            precision=draft.embedder.precision,
            model_sha256=draft.embedder.model_sha256,
            count=len(draft.templates),
            task_counts=dict(sorted(Counter(t.task for t in draft.templates).items())),
            files=files,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            index_type=spec.index_type,
            index_params=spec.params,
            embed_field=draft.settings.embed_field,
            sources=draft.sources,
            parent=draft.parent,
            task_routing=routing,
        )

    content = VersionContent(draft.templates, draft.vectors, faiss_index, classifier)
    manifest = write_version(index_dir, content, manifest_for)
    log.info("version %s (%d templates) is live in %s", manifest.version, manifest.count, index_dir)
    return manifest


def classifier_training_rows(
    tasks: Sequence[str], limit: int = MAX_CLASSIFIER_EXAMPLES
) -> np.ndarray:
    """Rows to train the task classifier on: all of them up to ``limit``, else the same
    seeded sample of at most ``limit / tasks`` rows of each task, so large indexes build in
    bounded time and memory and rare tasks keep all their examples."""
    if len(tasks) <= limit:
        return np.arange(len(tasks))
    labels = np.asarray(tasks)
    per_task = -(-limit // len(set(tasks)))
    rng = np.random.default_rng(0)
    chosen = [
        rng.permutation(np.flatnonzero(labels == task))[:per_task] for task in sorted(set(tasks))
    ]
    return np.sort(np.concatenate(chosen))


def _train_task_router(draft: VersionDraft) -> tuple[TaskClassifier | None, RoutingQuality | None]:
    """Learn each template's task from its source query, for requests that name no task, and
    measure on held-out folds how well it routes; an index of a single task has nothing to
    infer."""
    tasks = [t.task for t in draft.templates]
    if len(set(tasks)) < 2:
        return None, None
    rows = classifier_training_rows(tasks)
    log.info(
        "training the task classifier on %d of %d templates, measured on held-out folds",
        len(rows),
        len(tasks),
    )
    return train_task_router(
        [draft.templates[i].source_query for i in rows],
        draft.vectors[rows],
        [tasks[i] for i in rows],
    )


def _live_version_or_none(index_dir: Path) -> str:
    try:
        return current_version(index_dir)
    except IndexArtifactError:
        return ""


def build_index(
    templates: Sequence[ThoughtTemplate],
    index_dir: Path,
    embedder: Embedder,
    embed_field: str = "query",
    show_progress: bool = False,
    *,
    settings: IndexSettings | None = None,
    device: str = "cpu",
    sources: Sequence[Path] = (),
) -> IndexManifest:
    """Embed ``templates``, write a new version under ``index_dir`` and make it live.

    ``settings`` (index type and parameters) default to ``auto``; ``embed_field`` is used when
    no settings are given. Earlier versions in ``index_dir`` stay for rollback.
    """
    settings = settings or IndexSettings(embed_field=embed_field)
    unique = _unique(templates)
    if not unique:
        raise IndexArtifactError("no templates to index")
    index_dir = Path(index_dir)
    vectors = embed_templates(unique, embedder, settings.embed_field, show_progress)
    draft = VersionDraft(
        unique, vectors, EmbedderIdentity.of(embedder), settings, source_files(sources)
    )
    with index_lock(index_dir):
        draft = replace(draft, parent=_live_version_or_none(index_dir))
        return _commit(index_dir, draft, device, show_progress)


def _replacement_key(template: ThoughtTemplate) -> tuple[str, str]:
    """Templates for the same task and query replace each other (one template per group)."""
    return template.task, normalize_query(template.source_query)


def _derived_draft(
    live: LoadedIndex,
    keep_rows: list[int],
    new: Sequence[ThoughtTemplate],
    new_vectors: np.ndarray,
    new_sources: tuple[SourceFile, ...] = (),
) -> VersionDraft:
    """The live version's kept rows (stored embeddings reused) followed by the new templates."""
    ordered = live.ordered_templates()
    manifest = live.manifest
    return VersionDraft(
        templates=[ordered[row] for row in keep_rows] + list(new),
        vectors=np.vstack([live.embeddings[keep_rows], new_vectors]).astype(np.float32),
        embedder=EmbedderIdentity.of_manifest(manifest),
        settings=IndexSettings.of(manifest),
        sources=manifest.sources + new_sources,
        parent=manifest.version,
    )


def add_templates(
    index_dir: Path,
    templates: Sequence[ThoughtTemplate],
    make_embedder: Callable[[IndexManifest], Embedder] = manifest_embedder,
    *,
    device: str = "cpu",
    show_progress: bool = False,
    sources: Sequence[Path] = (),
) -> UpdateResult:
    """Add new templates (replacing those of the same task and query) as a new live version.

    Only new templates are embedded, with ``make_embedder(live version's manifest)``, which
    must give the same vectors as the embedder that built it.
    """
    index_dir = Path(index_dir)
    incoming = _unique(templates)
    with index_lock(index_dir):
        live = load_index(index_dir)
        known = {t.id for t in live.templates.values()}
        new = [t for t in incoming if t.id not in known]
        if not new:
            return UpdateResult(live.manifest, unchanged=len(incoming))
        embedder = make_embedder(live.manifest)
        verify_embedder(live.manifest, embedder)
        new_keys = {_replacement_key(t) for t in new}
        keep_rows = [
            row
            for row, t in enumerate(live.ordered_templates())
            if _replacement_key(t) not in new_keys
        ]
        vectors = embed_templates(new, embedder, live.manifest.embed_field, show_progress)
        draft = _derived_draft(live, keep_rows, new, vectors, source_files(sources))
        manifest = _commit(index_dir, draft, device, show_progress)
    replaced = live.manifest.count - len(keep_rows)
    return UpdateResult(
        manifest, added=len(new), replaced=replaced, unchanged=len(incoming) - len(new)
    )


def remove_templates(
    index_dir: Path, template_ids: Sequence[str], device: str = "cpu"
) -> UpdateResult:
    """Remove templates by id as a new live version. Unknown ids change nothing: they are
    reported in ``not_found``, and raise only when no id is known (no version to write)."""
    index_dir = Path(index_dir)
    with index_lock(index_dir):
        live = load_index(index_dir)
        ordered = live.ordered_templates()
        unknown = set(template_ids) - {t.id for t in ordered}
        doomed = set(template_ids) - unknown
        if not doomed:
            raise ValueError(f"not in live version {live.version}: {', '.join(sorted(unknown))}")
        keep_rows = [row for row, t in enumerate(ordered) if t.id not in doomed]
        if not keep_rows:
            raise ValueError("removing these ids would leave the index empty")
        empty = np.zeros((0, live.manifest.dimension), dtype=np.float32)
        manifest = _commit(index_dir, _derived_draft(live, keep_rows, [], empty), device, False)
    return UpdateResult(manifest, removed=len(doomed), not_found=tuple(sorted(unknown)))
