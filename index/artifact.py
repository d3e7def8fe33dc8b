"""The on-disk index artifact: versioned folders with a manifest, switched atomically.

Layout::

    INDEX_DIR/CURRENT                      name of the live version
    INDEX_DIR/.lock                        held by whoever writes a version or switches CURRENT
    INDEX_DIR/versions/<version>/index.faiss
                                templates.jsonl
                                embeddings.npy   (so updates never re-embed old templates)
                                manifest.json    (sha256 of every file above)

A version is written in a hidden staging folder, renamed into place whole, and only then named
by CURRENT, so a crash at any point leaves the previous version live. Versions share no files:
each is written in full, so damage to one version can never change what another verifies as.
Loading verifies every checksum and the files' agreement with the manifest before anything is
served.

Everything read from a version folder or CURRENT is treated as hostile: whoever can write a log
can shape templates, and whoever can write the folder can make bad files hash right. So every
failure to read or parse a version, whatever raised it, becomes one ``IndexDamagedError`` naming
the file and the reason, and the manifest may only name files inside its own folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import numpy as np

from thoughtbank.cli_common import DEFAULT_EMBED_BATCH_SIZE
from thoughtbank.files import sha256_file
from thoughtbank.index.embedder import (
    BACKEND_PRECISIONS,
    Embedder,
    load_embedder,
    resolve_backend,
)
from thoughtbank.index.faiss_backend import (
    IdFilter,
    IndexSpec,
    import_faiss,
    search_parameters,
    spec_problem,
    stored_ids,
)
from thoughtbank.index.task_classifier import (
    CLASSIFIER_ARRAYS_FILE,
    TaskClassifier,
    TaskClassifierError,
)
from thoughtbank.index.task_routing import RoutingQuality
from thoughtbank.index.threads import set_faiss_threads
from thoughtbank.schema import ThoughtTemplate
from thoughtbank.templates.store import parse_template_line, write_templates

FORMAT_VERSION = 2
CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
VERSIONS_DIR = "versions"
STAGING_PREFIX = ".staging-"
INDEX_FILE = "index.faiss"
TEMPLATES_FILE = "templates.jsonl"
EMBEDDINGS_FILE = "embeddings.npy"
MANIFEST_FILE = "manifest.json"
# Ids of the templates of pruned versions, one per line: outcomes may still name them.
PRUNED_IDS_FILE = "pruned_template_ids"
# Every version has these; the manifest may list more files, and all it lists are verified.
DATA_FILES = (INDEX_FILE, TEMPLATES_FILE, EMBEDDINGS_FILE)
# A version name is about 31 characters: a longer CURRENT names none, and is not read whole.
MAX_CURRENT_BYTES = 256
# A manifest is a few tens of KiB (the probe embeddings are most of it).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
# Reasons quote what was read; hostile files must not make them megabytes long.
MAX_REASON_CHARS = 300
#: A templates-file line's digest (blake2b), by which a reload recognises an unchanged line.
LINE_DIGEST = np.dtype("V16")


class IndexArtifactError(RuntimeError):
    """The index artifact is missing, damaged or incompatible; the message says which."""


class IndexDamagedError(IndexArtifactError):
    """A version (or CURRENT) that cannot be read or trusted: ``subject`` names it, ``reason``
    says why and in which file. Every kind of damage raises this one type."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"DAMAGED {subject}: {reason}")
        self.subject = subject
        self.reason = reason


class EmbedderMismatchError(IndexArtifactError):
    """The embedder at hand is not the one that built the index."""


@dataclass(frozen=True)
class SourceFile:
    """A templates file that went into a version, by content hash."""

    path: str
    sha256: str


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
    index_params: dict[str, int] = field(default_factory=dict)
    embed_field: str = "query"
    embedder_probes: list[list[float]] = field(default_factory=list)
    sources: tuple[SourceFile, ...] = ()
    parent: str = ""
    #: Per template task, the score below which its templates are not served when a request
    #: sets no ``min_score`` (written by ``thoughtbank eval calibrate``).
    min_scores: dict[str, float] = field(default_factory=dict)
    #: The task classifier's held-out routing quality and the tasks it does not route to
    #: (None for versions built before it was measured: every task is routed).
    task_routing: RoutingQuality | None = None
    #: How the embedder ran (versions built before backends were recorded: torch fp32).
    backend: str = "torch"
    precision: str = "fp32"
    #: sha256 of the model file that produced the vectors ("" when unknown).
    model_sha256: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def spec(self) -> IndexSpec:
        return IndexSpec(self.index_type, dict(self.index_params))

    @property
    def unrouted_tasks(self) -> frozenset[str]:
        """Tasks whose predictions never route a request (similarity decides for them)."""
        return frozenset(self.task_routing.unrouted if self.task_routing else ())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> IndexManifest:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise IndexArtifactError(f"manifest is a JSON {type(data).__name__}, not an object")
        if data.get("format_version") != FORMAT_VERSION:
            raise IndexArtifactError(
                f"unsupported index format version {data.get('format_version')!r} "
                f"(this thoughtbank reads {FORMAT_VERSION}): rebuild with `thoughtbank index build`"
            )
        _check_field_types(cls, data)
        data["sources"] = tuple(SourceFile(**s) for s in data.get("sources", ()))
        if data.get("task_routing") is not None:
            data["task_routing"] = RoutingQuality.from_dict(data["task_routing"])
        return cls(**data)


def _conforms(value: Any, hint: Any) -> bool:
    """Whether JSON ``value`` is of the field type ``hint`` (str, int, float, dict, list)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is dict:
        return isinstance(value, dict) and all(
            _conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items()
        )
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if hint is str:
        return isinstance(value, str)
    if hint in (int, float):
        number = (int,) if hint is int else (int, float)
        return isinstance(value, number) and not isinstance(value, bool) and math.isfinite(value)
    return True  # records (sources, task_routing) check their fields as they are built


def _check_field_types(record: type, data: dict[str, Any]) -> None:
    """Refuse a field of the wrong type now, not when a request first uses it."""
    hints = get_type_hints(record)
    for known in fields(record):
        if known.name in data and not _conforms(data[known.name], hints[known.name]):
            raise IndexArtifactError(
                f"manifest field {known.name!r} is not of type {known.type}: "
                f"{_short(repr(data[known.name]))}"
            )


def _short(text: str) -> str:
    """``text`` cut to ``MAX_REASON_CHARS``, control characters escaped: reasons quote hostile
    files and are printed to terminals."""
    cut = text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "..."
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)


def template_int_id(template_id: str) -> int:
    """Stable 63-bit FAISS id of a template (derived from its content-hash id)."""
    digest = hashlib.sha256(template_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def _fsync_path(path: Path) -> None:
    """Flush a written file or a folder's entries to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_write(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive lock for writers, so two concurrent `index add`s cannot lose an update."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def set_current(index_dir: Path, version: str) -> None:
    """Make ``version`` live: write a temp file, fsync, rename over CURRENT, fsync the folder."""
    tmp = index_dir / f".{CURRENT_FILE}.tmp"
    _fsync_write(tmp, (version + "\n").encode())
    tmp.replace(index_dir / CURRENT_FILE)
    _fsync_path(index_dir)


def current_version(index_dir: Path) -> str:
    """The version CURRENT names; a CURRENT that names none is ``IndexDamagedError``.

    Reads at most ``MAX_CURRENT_BYTES`` + 1 bytes, so a huge CURRENT costs nothing.
    """
    path = Path(index_dir) / CURRENT_FILE
    try:
        with path.open("rb") as handle:
            content = handle.read(MAX_CURRENT_BYTES + 1)
    except FileNotFoundError:
        raise IndexArtifactError(
            f"{index_dir} is not a thoughtbank index (no {CURRENT_FILE} file)"
        ) from None
    if len(content) > MAX_CURRENT_BYTES:
        raise IndexDamagedError(
            CURRENT_FILE, f"{path}: over {MAX_CURRENT_BYTES} bytes, longer than any version name"
        )
    try:
        name = content.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise IndexDamagedError(
            CURRENT_FILE, f"{path}: not UTF-8 (byte {exc.start} of {len(content)})"
        ) from None
    if not name:
        raise IndexDamagedError(CURRENT_FILE, f"{path}: empty, it names no version")
    if not _is_version_name(name):
        raise IndexDamagedError(CURRENT_FILE, f"{path}: {name!r} is not a version name")
    return name


def _is_version_name(name: str) -> bool:
    """A plain, printable folder name (no path, not hidden like the staging folders)."""
    return bool(name) and name.isprintable() and Path(name).name == name and name[0] != "."


def version_dir(index_dir: Path, version: str) -> Path:
    """The folder of ``version``; a name that is not a plain folder name is refused."""
    if not _is_version_name(version):
        raise IndexArtifactError(f"not a version name: {_short(repr(version))}")
    return Path(index_dir) / VERSIONS_DIR / version


def list_versions(index_dir: Path) -> list[str]:
    """Names of the complete versions, oldest first (names start with a UTC timestamp)."""
    root = Path(index_dir) / VERSIONS_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _is_version_name(p.name))


def version_template_ids(index_dir: Path, version: str) -> set[str]:
    """The ids of the templates ``version`` holds, read for ids only; a damaged version gives
    the ids it still has (this answers "was it ever held", not "is it servable")."""
    path = version_dir(index_dir, version) / TEMPLATES_FILE
    ids = set()
    try:
        with path.open("rb") as handle:
            for line in handle:
                try:
                    ids.add(str(json.loads(line)["id"]))
                except (ValueError, TypeError, KeyError):
                    continue
    except OSError:
        pass
    return ids


def pruned_template_ids(index_dir: Path) -> set[str]:
    """The ids of templates that only pruned versions held."""
    path = Path(index_dir) / PRUNED_IDS_FILE
    return set(path.read_text(encoding="utf-8").split()) if path.exists() else set()


def held_template_ids(index_dir: Path) -> set[str]:
    """Every template id a version of ``index_dir`` has ever held, pruned versions included."""
    held = pruned_template_ids(index_dir)
    for version in list_versions(index_dir):
        held |= version_template_ids(index_dir, version)
    return held


def new_version_name(template_ids: Sequence[str]) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    content = hashlib.sha256("".join(sorted(template_ids)).encode()).hexdigest()[:8]
    return f"{stamp}-{content}"


@dataclass(frozen=True)
class VersionContent:
    """What one version holds, row-aligned: templates[i] is embedded as vectors[i]."""

    templates: Sequence[ThoughtTemplate]
    vectors: np.ndarray
    faiss_index: Any
    task_classifier: TaskClassifier | None = None


def _write_files(folder: Path, content: VersionContent) -> dict[str, str]:
    """Write the data files of a version, fsynced; return their sha256 by name."""
    faiss = import_faiss()
    faiss.write_index(content.faiss_index, str(folder / INDEX_FILE))
    _fsync_path(folder / INDEX_FILE)
    write_templates(folder / TEMPLATES_FILE, content.templates)
    with (folder / EMBEDDINGS_FILE).open("wb") as handle:
        np.save(handle, content.vectors, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    names = list(DATA_FILES)
    if content.task_classifier is not None:
        names += content.task_classifier.save(folder)
    return {name: sha256_file(folder / name) for name in names}


ManifestFactory = Callable[[str, dict[str, str]], IndexManifest]


def write_version(
    index_dir: Path,
    content: VersionContent,
    manifest_for: ManifestFactory,
    make_live: bool = True,
) -> IndexManifest:
    """Write a complete version, then (``make_live``) switch CURRENT to it.

    ``manifest_for(version, files)`` returns the manifest once the name and checksums are
    known. The caller holds ``index_lock``.
    """
    version = new_version_name([t.id for t in content.templates])
    final = version_dir(index_dir, version)
    staging = final.with_name(STAGING_PREFIX + version)
    staging.mkdir(parents=True)
    try:
        manifest = manifest_for(version, _write_files(staging, content))
        _fsync_write(staging / MANIFEST_FILE, manifest.to_json().encode())
        _fsync_path(staging)
        staging.rename(final)
        _fsync_path(final.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if make_live:
        set_current(index_dir, version)
    return manifest


@contextmanager
def _reading(folder: Path, name: str = "") -> Iterator[None]:
    """Whatever goes wrong while reading file ``name`` of the version in ``folder`` (or the
    folder itself) is ``IndexDamagedError`` naming the version, the file and the reason: no
    parser lists every exception that hostile bytes can raise, so none is let through."""
    try:
        yield
    except IndexDamagedError:
        raise
    except IndexArtifactError as exc:  # a check that already names the file
        raise IndexDamagedError(folder.name, str(exc)) from exc
    except Exception as exc:
        reason = _short(f"{type(exc).__name__}: {exc}")
        raise IndexDamagedError(folder.name, f"{folder / name}: unreadable: {reason}") from exc


def _read_bounded(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        content = handle.read(limit + 1)
    if len(content) > limit:
        raise IndexArtifactError(f"{path}: over {limit} bytes")
    return content


def read_manifest(folder: Path) -> IndexManifest:
    """The manifest of a version folder, or ``IndexDamagedError`` saying what is wrong."""
    path = folder / MANIFEST_FILE
    with _reading(folder, MANIFEST_FILE):
        if not path.is_file():
            raise IndexArtifactError(f"{folder}: missing {MANIFEST_FILE}")
        try:
            manifest = IndexManifest.from_json(_read_bounded(path, MAX_MANIFEST_BYTES).decode())
        except (IndexArtifactError, ValueError, TypeError, KeyError) as exc:
            raise IndexArtifactError(f"{path}: unreadable manifest: {_short(str(exc))}") from exc
        if manifest.version != folder.name:  # else the server would reload it on every poll
            raise IndexArtifactError(
                f"{path}: names version {_short(repr(manifest.version))}, "
                f"its folder is {folder.name!r}"
            )
    return manifest


def _listed_file(folder: Path, name: str) -> Path:
    """``folder / name`` for a file the manifest lists; a path that leads out of the folder
    (absolute, ``..``, a link elsewhere) is refused before anything is read or hashed."""
    path = folder / name
    plain_name = Path(name).name == name and name not in ("", ".", "..")
    if not plain_name or path.resolve().parent != folder.resolve():
        raise IndexArtifactError(
            f"{folder / MANIFEST_FILE}: file {_short(repr(name))} is outside its version folder"
        )
    return path


def verify_version(folder: Path) -> IndexManifest:
    """Check the manifest and every file's checksum; raise ``IndexDamagedError`` on damage."""
    folder = Path(folder)
    with _reading(folder):
        if not folder.is_dir():
            raise IndexArtifactError(f"{folder}: no such index version")
        manifest = read_manifest(folder)
        unlisted = set(DATA_FILES) - set(manifest.files)
        if unlisted:
            raise IndexArtifactError(f"{folder}: manifest has no checksum for {sorted(unlisted)}")
        for name, expected in manifest.files.items():
            path = _listed_file(folder, name)
            if not path.is_file():
                raise IndexArtifactError(f"{path}: missing")
            if sha256_file(path) != expected:
                raise IndexArtifactError(f"{path}: checksum mismatch (file altered or truncated)")
    return manifest


def manifest_embedder(
    manifest: IndexManifest,
    backend: str | None = None,
    precision: str | None = None,
    device: str = "cpu",
    batch_size: int = DEFAULT_EMBED_BATCH_SIZE,
) -> Embedder:
    """The embedder ``manifest``'s version was built with, or the backend and precision asked
    instead (None keeps the manifest's); ``verify_embedder`` decides whether it may be used."""
    backend, precision = manifest_backend(manifest, backend, precision)
    return load_embedder(manifest.embedder, backend, precision, device, batch_size)


def manifest_backend(
    manifest: IndexManifest, backend: str | None = None, precision: str | None = None
) -> tuple[str, str]:
    """(backend, precision) to embed with for ``manifest``'s version: the manifest's unless
    asked otherwise. Another backend asked without a precision keeps the manifest's precision
    where it runs it, else takes its own ``auto``."""
    if backend is None:
        return resolve_backend(manifest.backend, precision or manifest.precision)
    backend, _ = resolve_backend(backend, "auto")
    if precision is None:
        runs_it = manifest.precision in BACKEND_PRECISIONS[backend]
        precision = manifest.precision if runs_it else "auto"
    return resolve_backend(backend, precision)


def verify_embedder(manifest: IndexManifest, embedder: Embedder) -> None:
    """Refuse an embedder whose vectors would not be comparable with the index's.

    Compares the probe sentences' embeddings within a cosine tolerance rather than the
    fingerprint string, which float noise on another device could flip.
    """
    stored = np.asarray(manifest.embedder_probes, dtype=np.float32)
    if embedder.dimension != manifest.dimension or not embedder.probes_match(stored):
        raise EmbedderMismatchError(
            f"index {manifest.version} was built by embedder {manifest.embedder!r} "
            f"({manifest.backend} {manifest.precision}, dimension {manifest.dimension}, "
            f"fingerprint {manifest.embedder_fingerprint}); {embedder.model_id!r} "
            f"({embedder.describe()}, dimension {embedder.dimension}, fingerprint "
            f"{embedder.fingerprint()}) gives different vectors: query with the model, backend "
            "and precision that built it"
        )


@dataclass
class LoadedIndex:
    """One verified index version in memory.

    Per-row facts are arrays, not dicts: a server holds one version per namespace, and a dict
    entry per template cost more than a template's vector.
    """

    manifest: IndexManifest
    faiss_index: Any
    templates: dict[int, ThoughtTemplate]  # by FAISS id, in row order
    path: Path
    embeddings: np.ndarray
    #: The FAISS id of each row (aligned with ``embeddings``).
    int_ids: np.ndarray
    task_classifier: TaskClassifier | None = None
    #: The digest of each row's line of the templates file: the next version's load takes an
    #: identical line's template from here instead of parsing it.
    line_digests: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=LINE_DIGEST))
    _id_order: np.ndarray = field(init=False, repr=False)  # rows by ascending id

    def __post_init__(self) -> None:
        self._id_order = np.argsort(self.int_ids, kind="stable").astype(np.int32)

    @property
    def version(self) -> str:
        return self.manifest.version

    def ordered_templates(self) -> list[ThoughtTemplate]:
        """Templates in row order (aligned with ``embeddings``)."""
        return [self.templates[int_id] for int_id in self.int_ids.tolist()]

    def rows_of(self, int_ids: Sequence[int]) -> np.ndarray:
        """The rows of the given template ids, in that order; ``KeyError`` for an id not held."""
        wanted = np.asarray(int_ids, dtype=np.int64).reshape(-1)
        if not len(self.int_ids):
            if len(wanted):
                raise KeyError(int(wanted[0]))
            return np.zeros(0, dtype=np.int32)
        found = np.searchsorted(self.int_ids, wanted, sorter=self._id_order)
        rows = self._id_order[np.minimum(found, len(self.int_ids) - 1)]
        held = self.int_ids[rows] == wanted
        if not held.all():
            raise KeyError(int(wanted[~held][0]))
        return rows

    def embeddings_of(self, int_ids: Sequence[int]) -> np.ndarray:
        """Stored (normalized) embeddings of the given template ids, in that order."""
        rows: np.ndarray = self.embeddings[self.rows_of(int_ids)]
        return rows

    def line_reuse(self) -> dict[bytes, int]:
        """Template id by line digest, for the next version's load."""
        return dict(zip(self.line_digests.tolist(), self.int_ids.tolist(), strict=True))

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        allowed_ids: np.ndarray | IdFilter | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, int ids) of shape (len(vectors), k); missing slots have id -1.

        ``allowed_ids`` restricts the search to those template ids (pass an ``IdFilter`` when
        the same ids are searched often); ``ef_search``/``nprobe`` apply to this call only, so
        concurrent searches do not race.
        """
        k = max(1, min(k, self.faiss_index.ntotal))
        if isinstance(allowed_ids, np.ndarray):
            allowed_ids = IdFilter(allowed_ids)
        params = search_parameters(self.manifest.spec, k, allowed_ids, ef_search, nprobe)
        set_faiss_threads(len(vectors))
        scores, ids = self.faiss_index.search(vectors, k, params=params)
        return scores, ids


@dataclass
class _TemplateLines:
    """The templates of a version's file in order, with their FAISS ids and line digests."""

    ordered: list[ThoughtTemplate] = field(default_factory=list)
    int_ids: list[int] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)


def _read_template_lines(path: Path, previous: LoadedIndex | None) -> _TemplateLines:
    """Parse the templates file; a line byte-identical to one of ``previous`` reuses its
    template (parsing and hashing ids is most of a load, and a new version mostly repeats the
    last one)."""
    read = _TemplateLines()
    reusable = previous.line_reuse() if previous is not None else {}
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            digest = hashlib.blake2b(line, digest_size=LINE_DIGEST.itemsize).digest()
            int_id = reusable.get(digest)
            if previous is not None and int_id is not None:
                template = previous.templates[int_id]
            else:
                template = parse_template_line(line, path, number)
                int_id = template_int_id(template.id)
            read.ordered.append(template)
            read.int_ids.append(int_id)
            read.digests.append(digest)
    return read


def _read_version_files(
    folder: Path, previous: LoadedIndex | None
) -> tuple[Any, _TemplateLines, np.ndarray]:
    """FAISS index, templates and embeddings of a verified folder; parse errors are damage."""
    faiss = import_faiss()
    with _reading(folder, INDEX_FILE):
        faiss_index = faiss.read_index(str(folder / INDEX_FILE))
    with _reading(folder, TEMPLATES_FILE):
        lines = _read_template_lines(folder / TEMPLATES_FILE, previous)
    with _reading(folder, EMBEDDINGS_FILE):
        # Mapped, not read: FAISS holds its own copy for search, and these rows are only
        # read for the few hits that need them, so they need not take memory of their own.
        embeddings = np.load(folder / EMBEDDINGS_FILE, mmap_mode="r", allow_pickle=False)
        if not isinstance(embeddings, np.ndarray) or embeddings.ndim != 2:
            raise IndexArtifactError(
                f"{folder / EMBEDDINGS_FILE}: not a 2-d array (shape {np.shape(embeddings)})"
            )
        if embeddings.dtype != np.float32:
            raise IndexArtifactError(
                f"{folder / EMBEDDINGS_FILE}: {embeddings.dtype} values, not float32"
            )
    return faiss_index, lines, embeddings


def _check_agreement(
    folder: Path,
    manifest: IndexManifest,
    faiss_index: Any,
    ordered: Sequence[ThoughtTemplate],
    int_ids: Sequence[int],
    embeddings: np.ndarray,
) -> None:
    """The files must agree with the manifest and each other, even if it was edited by hand
    (``int_ids``: the templates' FAISS ids, in order)."""
    counts = {
        "templates": len(ordered),
        "embeddings": len(embeddings),
        "FAISS index": faiss_index.ntotal,
    }
    dimensions = {"embeddings": embeddings.shape[1], "FAISS index": faiss_index.d}
    for what, count in counts.items():
        if count != manifest.count:
            raise IndexArtifactError(
                f"{folder}: {what} holds {count} entries, manifest says {manifest.count}"
            )
    for what, dimension in dimensions.items():
        if dimension != manifest.dimension:
            raise IndexArtifactError(
                f"{folder}: {what} has dimension {dimension}, manifest says {manifest.dimension}"
            )
    if len({t.id for t in ordered}) != len(ordered):
        raise IndexArtifactError(f"{folder}: duplicate template ids in {TEMPLATES_FILE}")
    problem = spec_problem(manifest.spec)
    if problem is not None:
        raise IndexArtifactError(f"{folder / MANIFEST_FILE}: {_short(problem)}")
    expected_ids = np.sort(np.array(int_ids, dtype=np.int64))
    if not np.array_equal(np.sort(stored_ids(faiss_index)), expected_ids):
        raise IndexArtifactError(
            f"{folder}: the ids in {INDEX_FILE} are not those of the templates in {TEMPLATES_FILE}"
        )


def load_index(
    index_dir: Path, version: str | None = None, previous: LoadedIndex | None = None
) -> LoadedIndex:
    """Load and verify ``version`` (default: the live one); any damage is ``IndexDamagedError``.

    ``previous``, a version already loaded, lends its templates for identical lines.
    """
    index_dir = Path(index_dir)
    folder = version_dir(index_dir, version or current_version(index_dir))
    manifest = verify_version(folder)
    faiss_index, lines, embeddings = _read_version_files(folder, previous)
    with _reading(folder):
        _check_agreement(folder, manifest, faiss_index, lines.ordered, lines.int_ids, embeddings)
    return LoadedIndex(
        manifest=manifest,
        faiss_index=faiss_index,
        templates=dict(zip(lines.int_ids, lines.ordered, strict=True)),
        path=folder,
        embeddings=embeddings,
        int_ids=np.array(lines.int_ids, dtype=np.int64),
        task_classifier=_read_task_classifier(folder, manifest),
        line_digests=np.array(lines.digests, dtype=LINE_DIGEST),
    )


def _read_task_classifier(folder: Path, manifest: IndexManifest) -> TaskClassifier | None:
    """The version's task classifier (verified by checksum), or None for versions without."""
    if CLASSIFIER_ARRAYS_FILE not in manifest.files:
        return None
    with _reading(folder, CLASSIFIER_ARRAYS_FILE):
        try:
            classifier = TaskClassifier.load(folder)
        except TaskClassifierError as exc:  # its message names the file
            raise IndexArtifactError(str(exc)) from exc
        if classifier.embedding_dimension != manifest.dimension:
            raise IndexArtifactError(
                f"{folder / CLASSIFIER_ARRAYS_FILE}: coefficients for embeddings of dimension "
                f"{classifier.embedding_dimension}, manifest says {manifest.dimension}"
            )
    return classifier


def damage_of(index_dir: Path, version: str) -> IndexDamagedError | None:
    """Why ``version`` cannot be served, or None when it loads as the server would load it."""
    try:
        load_index(index_dir, version)
    except IndexDamagedError as exc:
        return exc
    return None


def set_min_scores(index_dir: Path, version: str, min_scores: dict[str, float]) -> IndexManifest:
    """Store calibrated per-task minimum scores in ``version``'s manifest (atomic rewrite).

    The manifest is not among the checksummed files, so the version stays verifiable; a
    running server applies the new minimums when it next loads the version.
    """
    index_dir = Path(index_dir)
    with index_lock(index_dir):
        folder = version_dir(index_dir, version)
        manifest = replace(verify_version(folder), min_scores=dict(sorted(min_scores.items())))
        staging = folder / f".{MANIFEST_FILE}.tmp"
        _fsync_write(staging, manifest.to_json().encode())
        staging.replace(folder / MANIFEST_FILE)
        _fsync_path(folder)
    return manifest


def rollback(index_dir: Path, version: str) -> IndexManifest:
    """Make an existing version live again once it loads in full (checksums alone miss
    files that were rewritten to hash right)."""
    index_dir = Path(index_dir)
    with index_lock(index_dir):
        if not version_dir(index_dir, version).is_dir():
            raise IndexArtifactError(f"{index_dir}: no such index version {version!r}")
        manifest = load_index(index_dir, version).manifest
        set_current(index_dir, version)
    return manifest


@dataclass(frozen=True)
class PruneResult:
    """The versions ``prune`` deleted, and why each damaged one it kept (or CURRENT) is damaged."""

    removed: list[str]
    damaged: dict[str, str]


def prune(index_dir: Path, keep: int) -> PruneResult:
    """Delete all but the ``keep`` newest versions and staging leftovers.

    Never deletes the version CURRENT names nor the last intact one. When CURRENT names no
    intact version, a server still serves the one named before, most likely the newest intact
    version older than CURRENT's: that one is kept too. Every kept version is loaded in full,
    and the damaged ones are reported.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    index_dir = Path(index_dir)
    with index_lock(index_dir):
        damage: dict[str, IndexDamagedError | None] = {}
        try:
            live = current_version(index_dir)
        except IndexDamagedError as exc:
            live, damage[CURRENT_FILE] = "", exc
        versions = list_versions(index_dir)
        kept = [v for v in versions if v in versions[-keep:] or v == live]
        damage.update({v: damage_of(index_dir, v) for v in kept})
        if live not in versions or damage[live] is not None:
            older = versions[: versions.index(live)] if live in versions else versions
            kept += _newest_intact(index_dir, older, damage)
        if all(damage[v] is not None for v in kept):
            kept += _newest_intact(index_dir, versions, damage)
        doomed = [v for v in versions if v not in kept]
        _remember_pruned_ids(index_dir, doomed, kept)
        for name in doomed:
            shutil.rmtree(version_dir(index_dir, name))
        for staging in (index_dir / VERSIONS_DIR).glob(STAGING_PREFIX + "*"):
            shutil.rmtree(staging)
    reported = {name: str(error) for name, error in damage.items() if error and name not in doomed}
    return PruneResult(doomed, reported)


def _remember_pruned_ids(index_dir: Path, doomed: Sequence[str], kept: Sequence[str]) -> None:
    """Append the ids only ``doomed`` versions hold to PRUNED_IDS_FILE, durably, before they
    go: an outcome naming one is still an outcome of this index."""
    if not doomed:
        return
    gone = set().union(*(version_template_ids(index_dir, v) for v in doomed))
    gone -= set().union(*(version_template_ids(index_dir, v) for v in kept))
    gone -= pruned_template_ids(index_dir)
    if gone:
        with (index_dir / PRUNED_IDS_FILE).open("a", encoding="utf-8") as handle:
            handle.write("".join(f"{template_id}\n" for template_id in sorted(gone)))
            handle.flush()
            os.fsync(handle.fileno())


def _newest_intact(
    index_dir: Path, versions: Sequence[str], damage: dict[str, IndexDamagedError | None]
) -> list[str]:
    """The newest of ``versions`` that loads, as a list of one (empty when none does);
    ``damage`` caches what each check found."""
    for version in reversed(versions):
        if version not in damage:
            damage[version] = damage_of(index_dir, version)
        if damage[version] is None:
            return [version]
    return []
