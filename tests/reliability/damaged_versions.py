"""Damaged index versions of every kind the hostile-input probe found, made with real files.

Each damage is applied to a copy of the live version and the manifest's checksums are then
recomputed, as someone who can write the index folder would: checksums catch accidents, not
intent, so the loader must also refuse files that hash right but do not parse. Only the
documented layout is used (``versions/<version>/``, ``manifest.json``, ``CURRENT``).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

CURRENT = "CURRENT"
VERSIONS = "versions"
MANIFEST = "manifest.json"

Damage = Callable[[Path], None]


def live_version(index_dir: Path) -> str:
    return (index_dir / CURRENT).read_text().strip()


def point_current_at(index_dir: Path, version: str) -> None:
    """Name ``version`` in CURRENT the way the index stage does: write aside, then rename."""
    write_current(index_dir, (version + "\n").encode())


def write_current(index_dir: Path, content: bytes) -> None:
    """Replace CURRENT atomically with ``content`` (also where a folder took its place)."""
    if (index_dir / CURRENT).is_dir():
        (index_dir / CURRENT).rmdir()
    staging = index_dir / ".CURRENT.fault"
    staging.write_bytes(content)
    staging.replace(index_dir / CURRENT)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _edit_manifest(folder: Path, edit: Callable[[dict[str, object]], object]) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps(edit(manifest)))


def rehash(folder: Path) -> None:
    """Recompute the manifest's checksums of the files it lists that exist (where the manifest
    still is an object with a ``files`` object)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except ValueError:
        return
    if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict):
        manifest["files"] = {
            name: _sha256(folder / name) if (folder / name).is_file() else digest
            for name, digest in manifest["files"].items()
        }
        (folder / MANIFEST).write_text(json.dumps(manifest))


def copy_version(
    index_dir: Path, name: str, damage: Damage | None = None, source: str | None = None
) -> Path:
    """Version ``source`` (default: the live one) copied as ``name`` (its manifest renamed),
    ``damage`` applied, checksums recomputed; CURRENT is not touched."""
    versions = index_dir / VERSIONS
    folder = versions / name
    shutil.copytree(versions / (source or live_version(index_dir)), folder)
    _edit_manifest(folder, lambda manifest: {**manifest, "version": name})
    if damage is not None:
        damage(folder)
        rehash(folder)
    return folder


def _manifest_is_a_list(folder: Path) -> None:
    (folder / MANIFEST).write_text("[]")


def _truncate(name: str) -> Damage:
    def damage(folder: Path) -> None:
        path = folder / name
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])

    return damage


def _empty(name: str) -> Damage:
    return lambda folder: (folder / name).write_bytes(b"")


def _classifier_json_of_the_wrong_shape(folder: Path) -> None:
    (folder / "task_classifier.json").write_text(json.dumps([2, ["a", "b"], {}]))


def _classifier_of_another_dimension(folder: Path) -> None:
    """Arrays that parse but whose shapes do not fit the features: every prediction fails."""
    path = folder / "task_classifier.npz"
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["coef"] = arrays["coef"][:, :-7]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def _zero_dimensional_embeddings(folder: Path) -> None:
    with (folder / "embeddings.npy").open("wb") as handle:
        np.save(handle, np.float32(1.0))


def _template_sources_a_string(folder: Path) -> None:
    path = folder / "templates.jsonl"
    first, *rest = path.read_text().splitlines()
    path.write_text("\n".join([json.dumps({**json.loads(first), "sources": "x"}), *rest]) + "\n")


def _manifest_names_another_version(folder: Path) -> None:
    _edit_manifest(folder, lambda manifest: {**manifest, "version": "19700101T000000Z-other"})


def _manifest_hnsw_without_its_parameters(folder: Path) -> None:
    """A type whose search needs parameters the manifest lacks: every search would fail."""
    _edit_manifest(folder, lambda manifest: {**manifest, "index_type": "hnsw", "index_params": {}})


def _manifest_lists_a_file_outside(folder: Path) -> None:
    outside = folder.parent.parent / CURRENT

    def escape(manifest: dict[str, object]) -> dict[str, object]:
        files = manifest["files"]
        assert isinstance(files, dict)
        return {**manifest, "files": {**files, "../../CURRENT": _sha256(outside)}}

    _edit_manifest(folder, escape)


def _manifest_lists_an_absolute_path(folder: Path) -> None:
    outside = (folder.parent.parent / CURRENT).resolve()

    def escape(manifest: dict[str, object]) -> dict[str, object]:
        files = manifest["files"]
        assert isinstance(files, dict)
        return {**manifest, "files": {**files, str(outside): _sha256(outside)}}

    _edit_manifest(folder, escape)


#: Damage that only parsing finds (every checksum matches), by the reason the loader must name.
VERSION_DAMAGE: dict[str, tuple[Damage, str]] = {
    "manifest-is-a-list": (_manifest_is_a_list, "manifest.json"),
    "npz-truncated": (_truncate("task_classifier.npz"), "task_classifier.npz"),
    "npz-empty": (_empty("task_classifier.npz"), "task_classifier.npz"),
    "classifier-json-wrong-shape": (_classifier_json_of_the_wrong_shape, "task_classifier.json"),
    "classifier-wrong-dimension": (_classifier_of_another_dimension, "task_classifier"),
    "embeddings-0d": (_zero_dimensional_embeddings, "embeddings.npy"),
    "embeddings-empty": (_empty("embeddings.npy"), "embeddings.npy"),
    "template-sources-a-string": (_template_sources_a_string, "templates.jsonl"),
    "manifest-names-another-version": (_manifest_names_another_version, "manifest.json"),
    "manifest-hnsw-without-params": (_manifest_hnsw_without_its_parameters, "index_params"),
    "manifest-path-escapes": (_manifest_lists_a_file_outside, "outside its version folder"),
    "manifest-path-absolute": (_manifest_lists_an_absolute_path, "outside its version folder"),
}


def make_current_a_folder(index_dir: Path) -> None:
    """CURRENT that cannot be opened as a file: reading it fails with an OSError, as under
    EMFILE or EACCES."""
    (index_dir / CURRENT).unlink()
    (index_dir / CURRENT).mkdir()


#: CURRENT files that cannot name a version, by the reason the reader must give.
CURRENT_DAMAGE: dict[str, tuple[bytes, str]] = {
    "not-utf8": (b"\xff\xfe\xfa-version\n", "not UTF-8"),
    "30-MB": (b"x" * 30_000_000, "bytes"),
    "empty": (b"\n", "empty"),
}
