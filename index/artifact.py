"""The on-disk index artifact: versioned folders with a manifest, switched atomically.

Layout::

    INDEX_DIR/CURRENT                      name of the live version
    INDEX_DIR/versions/<version>/index.faiss
                                templates.jsonl
                                embeddings.npy   (so updates never re-embed old templates)
                                manifest.json    (sha256 of every file above)

A version is written completely before CURRENT names it, so a crash mid-build leaves the
previous version live; loading verifies every checksum before anything is served.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from thoughtbank.index.embedder import Embedder
from thoughtbank.index.faiss_backend import import_faiss
from thoughtbank.templates import ThoughtTemplate, read_templates, write_templates

FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
VERSIONS_DIR = "versions"
INDEX_FILE = "index.faiss"
TEMPLATES_FILE = "templates.jsonl"
EMBEDDINGS_FILE = "embeddings.npy"
MANIFEST_FILE = "manifest.json"


class IndexArtifactError(RuntimeError):
    """The index artifact is missing, damaged or incompatible; the message says which."""


@dataclass(frozen=True)
class IndexManifest:
    """Everything needed to trust and use one index version."""

    version: str
    embedder: str
    dimension: int
    embedder_fingerprint: str
    count: int
    task_counts: dict[str, int]
    files: dict[str, str]
    created_at: str
    metric: str = "inner_product"
    index_type: str = "flat"
    index_params: dict[str, Any] = field(default_factory=dict)
    embed_field: str = "query"
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> IndexManifest:
        data = json.loads(text)
        if data.get("format_version") != FORMAT_VERSION:
            raise IndexArtifactError(
                f"unsupported index format version {data.get('format_version')!r}"
            )
        return cls(**data)


def template_int_id(template_id: str) -> int:
    """Stable 63-bit FAISS id of a template (derived from its content-hash id)."""
    digest = hashlib.sha256(template_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def set_current(index_dir: Path, version: str) -> None:
    """Make ``version`` live: write a temp file, fsync, rename over CURRENT."""
    tmp = index_dir / f".{CURRENT_FILE}.tmp"
    _fsync_write(tmp, (version + "\n").encode())
    tmp.replace(index_dir / CURRENT_FILE)


def current_version(index_dir: Path) -> str:
    path = Path(index_dir) / CURRENT_FILE
    if not path.exists():
        raise IndexArtifactError(f"{index_dir} is not a thoughtbank index (no {CURRENT_FILE} file)")
    return path.read_text().strip()


def _new_version_name(templates: Sequence[ThoughtTemplate]) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    content = hashlib.sha256("".join(sorted(t.id for t in templates)).encode()).hexdigest()[:8]
    return f"{stamp}-{content}"


def embedding_text(template: ThoughtTemplate, embed_field: str) -> str:
    """What is embedded for a template: its source query, optionally with the template text."""
    if embed_field == "query+template":
        return f"{template.source_query}\n{template.text}"
    return template.source_query


def build_index(
    templates: Sequence[ThoughtTemplate],
    index_dir: Path,
    embedder: Embedder,
    embed_field: str = "query",
    show_progress: bool = False,
) -> IndexManifest:
    """Embed ``templates``, write a new version under ``index_dir`` and make it live."""
    faiss = import_faiss()
    unique = list({t.id: t for t in templates}.values())
    if not unique:
        raise IndexArtifactError("no templates to index")
    vectors = embedder.encode([embedding_text(t, embed_field) for t in unique], show_progress)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    index.add_with_ids(vectors, np.array([template_int_id(t.id) for t in unique], dtype=np.int64))

    index_dir = Path(index_dir)
    version = _new_version_name(unique)
    version_dir = index_dir / VERSIONS_DIR / version
    version_dir.mkdir(parents=True)
    faiss.write_index(index, str(version_dir / INDEX_FILE))
    write_templates(version_dir / TEMPLATES_FILE, unique)
    with (version_dir / EMBEDDINGS_FILE).open("wb") as handle:
        np.save(handle, vectors)
    manifest = IndexManifest(
        version=version,
        embedder=embedder.model_id,
        dimension=int(vectors.shape[1]),
        embedder_fingerprint=embedder.fingerprint(),
        count=len(unique),
        task_counts=dict(sorted(Counter(t.task for t in unique).items())),
        files={
            name: sha256_file(version_dir / name)
            for name in (INDEX_FILE, TEMPLATES_FILE, EMBEDDINGS_FILE)
        },
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        embed_field=embed_field,
    )
    _fsync_write(version_dir / MANIFEST_FILE, manifest.to_json().encode())
    set_current(index_dir, version)
    return manifest


class EmbedderMismatchError(IndexArtifactError):
    """The embedder at hand is not the one that built the index."""


def verify_embedder(manifest: IndexManifest, embedder: Embedder) -> None:
    """Refuse an embedder whose vectors would not be comparable with the index's."""
    if embedder.dimension != manifest.dimension or (
        embedder.fingerprint() != manifest.embedder_fingerprint
    ):
        raise EmbedderMismatchError(
            f"index {manifest.version} was built by embedder {manifest.embedder!r} "
            f"(dimension {manifest.dimension}, fingerprint {manifest.embedder_fingerprint}); "
            f"{embedder.model_id!r} gives different vectors: query with the model that built it"
        )


@dataclass
class LoadedIndex:
    """One verified index version in memory."""

    manifest: IndexManifest
    faiss_index: Any
    templates: dict[int, ThoughtTemplate]
    path: Path
    embeddings: np.ndarray
    row_of: dict[int, int]

    @property
    def version(self) -> str:
        return self.manifest.version

    def embeddings_of(self, int_ids: Sequence[int]) -> np.ndarray:
        """Stored (normalized) embeddings of the given template ids, in that order."""
        return self.embeddings[[self.row_of[i] for i in int_ids]]

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, int ids) of shape (len(vectors), k); missing slots have id -1.

        ``allowed_ids`` restricts the search to those template ids (a FAISS ID selector);
        ``ef_search``/``nprobe`` apply to this call only, so concurrent searches do not race.
        """
        faiss = import_faiss()
        k = max(1, min(k, self.faiss_index.ntotal))
        selector = None if allowed_ids is None else faiss.IDSelectorBatch(allowed_ids)
        params = faiss.SearchParameters(sel=selector) if selector is not None else None
        return self.faiss_index.search(vectors, k, params=params)


def verify_version(version_dir: Path) -> IndexManifest:
    """Check the manifest and every file's checksum; raise ``IndexArtifactError`` on damage."""
    manifest_path = version_dir / MANIFEST_FILE
    if not manifest_path.exists():
        raise IndexArtifactError(f"{version_dir}: missing {MANIFEST_FILE}")
    try:
        manifest = IndexManifest.from_json(manifest_path.read_text())
    except (ValueError, TypeError) as exc:
        raise IndexArtifactError(f"{manifest_path}: unreadable manifest: {exc}") from exc
    for name, expected in manifest.files.items():
        path = version_dir / name
        if not path.exists():
            raise IndexArtifactError(f"{path}: missing")
        if sha256_file(path) != expected:
            raise IndexArtifactError(f"{path}: checksum mismatch (file altered or truncated)")
    return manifest


def load_index(index_dir: Path, version: str | None = None) -> LoadedIndex:
    """Load and verify ``version`` (default: the live one)."""
    faiss = import_faiss()
    index_dir = Path(index_dir)
    version = version or current_version(index_dir)
    version_dir = index_dir / VERSIONS_DIR / version
    manifest = verify_version(version_dir)
    faiss_index = faiss.read_index(str(version_dir / INDEX_FILE))
    ordered = list(read_templates(version_dir / TEMPLATES_FILE))
    templates = {template_int_id(t.id): t for t in ordered}
    embeddings = np.load(version_dir / EMBEDDINGS_FILE, allow_pickle=False)
    row_of = {template_int_id(t.id): row for row, t in enumerate(ordered)}
    return LoadedIndex(manifest, faiss_index, templates, version_dir, embeddings, row_of)
