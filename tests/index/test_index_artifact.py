"""The versioned artifact: build, load, tampering, crashes, ids across updates, embedder checks."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from thoughtbank.index import (
    Embedder,
    EmbedderMismatchError,
    IdFilter,
    IndexArtifactError,
    IndexSettings,
    add_templates,
    build_index,
    current_version,
    list_versions,
    load_index,
    prune,
    remove_templates,
    rollback,
    template_int_id,
    verify_embedder,
    verify_version,
    version_dir,
)
from thoughtbank.index import artifact as artifact_module
from thoughtbank.templates import ThoughtTemplate, read_templates


@pytest.fixture(scope="module")
def templates(demo_templates: Path) -> list[ThoughtTemplate]:
    return list(read_templates(demo_templates))


@pytest.fixture(scope="module")
def built_index(templates, embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat index with two versions; tests copy it before changing anything."""
    index_dir = tmp_path_factory.mktemp("index")
    build_index(templates[:20], index_dir, embedder)
    build_index(templates, index_dir, embedder)
    return index_dir


@pytest.fixture
def index_dir(built_index: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "index"
    shutil.copytree(built_index, copy)
    return copy


class WrappedEmbedder(Embedder):
    """The default embedder's vectors, changed by ``change`` and renormalized."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner.model_id, inner.precision)
        self.backend = inner.backend
        self.inner = inner

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def encode(self, texts, show_progress: bool = False) -> np.ndarray:
        vectors = self.change(self.inner.encode(texts, show_progress))
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    def change(self, vectors: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class ShiftedEmbedder(WrappedEmbedder):
    """Another model as far as vectors go: the bundled one's output, rotated."""

    def change(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.roll(vectors, 1, axis=1)
        vectors[:, 0] += 0.5
        return vectors


class NoisyEmbedder(WrappedEmbedder):
    """The same model on another device: last-bits noise (what bf16 or another BLAS gives)."""

    def change(self, vectors: np.ndarray) -> np.ndarray:
        return vectors + np.random.default_rng(0).normal(0, 2e-3, vectors.shape)


def test_load_verifies_and_searches_the_live_version(index_dir: Path, templates) -> None:
    loaded = load_index(index_dir)
    assert loaded.version == current_version(index_dir) == list_versions(index_dir)[-1]
    manifest = loaded.manifest
    assert manifest.count == len(templates) == len(loaded.templates)
    assert manifest.task_counts == {
        "commonsense_qa": 8,
        "gsm8k": 8,
        "mbpp": 8,
        "mmlu_pro/physics": 8,
    }
    assert manifest.index_type == "flat" and manifest.parent == list_versions(index_dir)[0]
    assert {"index.faiss", "templates.jsonl", "embeddings.npy"} <= set(manifest.files)
    assert len(manifest.embedder_probes) == 3 and len(manifest.embedder_probes[0]) == 384
    first = templates[0]
    scores, ids = loaded.search(loaded.embeddings_of([template_int_id(first.id)]), k=3)
    assert ids[0][0] == template_int_id(first.id) and scores[0][0] == pytest.approx(1.0)


def _damage(path: Path, how: str) -> None:
    if how == "altered":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
    else:
        path.unlink()


@pytest.mark.parametrize("name", ["index.faiss", "templates.jsonl", "embeddings.npy"])
@pytest.mark.parametrize("how", ["altered", "truncated", "missing"])
def test_damaged_file_is_refused_and_the_other_version_still_loads(
    index_dir: Path, name: str, how: str
) -> None:
    old, live = list_versions(index_dir)
    _damage(version_dir(index_dir, live) / name, how)
    with pytest.raises(IndexArtifactError, match=name):
        load_index(index_dir)
    assert verify_version(version_dir(index_dir, old)).version == old
    assert load_index(index_dir, old).manifest.count == 20


def test_damaged_or_edited_manifest_is_refused(index_dir: Path) -> None:
    manifest_path = version_dir(index_dir, current_version(index_dir)) / "manifest.json"
    data = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**data, "count": 31}))
    with pytest.raises(IndexArtifactError, match="manifest says 31"):
        load_index(index_dir)
    manifest_path.write_text("{not json")
    with pytest.raises(IndexArtifactError, match="unreadable manifest"):
        load_index(index_dir)
    unchecked = {name: digest for name, digest in data["files"].items() if name != "index.faiss"}
    manifest_path.write_text(json.dumps({**data, "files": unchecked}))
    with pytest.raises(IndexArtifactError, match=r"no checksum for \['index.faiss'\]"):
        load_index(index_dir)
    manifest_path.write_text(json.dumps({**data, "format_version": 1}))
    with pytest.raises(IndexArtifactError, match="format version 1"):
        load_index(index_dir)


def test_crash_between_writing_a_version_and_switching_current_keeps_the_old_one(
    index_dir: Path, templates, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = current_version(index_dir)

    def crash(*_args) -> None:
        raise KeyboardInterrupt("killed before CURRENT was switched")

    monkeypatch.setattr(artifact_module, "set_current", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index(templates[:5], index_dir, embedder)
    assert current_version(index_dir) == live and load_index(index_dir).manifest.count == 32
    orphan = list_versions(index_dir)[-1]
    assert orphan != live and verify_version(version_dir(index_dir, orphan)).count == 5


def test_crash_while_writing_files_leaves_no_version(
    index_dir: Path, templates, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = list_versions(index_dir)

    def crash(*_args) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(artifact_module, "write_templates", crash)
    with pytest.raises(OSError, match="disk full"):
        build_index(templates[:5], index_dir, embedder)
    assert list_versions(index_dir) == before
    assert not list((index_dir / "versions").glob(".staging-*"))


def test_a_reload_shares_unchanged_templates_and_parses_the_rest(
    index_dir: Path, templates, embedder
) -> None:
    before = load_index(index_dir)
    revised = dataclasses.replace(templates[0], id="revised-0", text=templates[0].text + " v2")
    add_templates(index_dir, [revised], lambda _live: embedder)
    after = load_index(index_dir, previous=before)
    unchanged = set(before.templates) - {template_int_id(templates[0].id)}
    assert all(after.templates[i] is before.templates[i] for i in unchanged)
    assert after.templates[template_int_id("revised-0")].text == revised.text
    assert after.ordered_templates() == list(read_templates(after.path / "templates.jsonl"))


def test_rows_of_finds_each_id_and_refuses_one_not_held(index_dir: Path) -> None:
    loaded = load_index(index_dir)
    ids = [template_int_id(t.id) for t in reversed(loaded.ordered_templates())]
    assert loaded.rows_of(ids).tolist() == list(range(len(ids)))[::-1]
    assert loaded.rows_of([]).tolist() == []
    with pytest.raises(KeyError):
        loaded.rows_of([ids[0], template_int_id("never-held")])


def test_ids_are_stable_across_add_and_remove(index_dir: Path, templates, embedder) -> None:
    before = load_index(index_dir)
    revised = dataclasses.replace(templates[0], id="revised-0", text=templates[0].text + " v2")
    new = dataclasses.replace(templates[1], id="new-1", source_query="A brand new question?")
    result = add_templates(index_dir, [revised, new, templates[2]], lambda _live: embedder)
    assert (result.added, result.replaced, result.unchanged) == (2, 1, 1)
    after_add = load_index(index_dir)
    kept = set(before.templates) - {template_int_id(templates[0].id)}
    assert kept < set(after_add.templates)
    assert set(after_add.templates) - kept == {
        template_int_id("revised-0"),
        template_int_id("new-1"),
    }
    for int_id in kept:  # stored embeddings reused, not recomputed
        np.testing.assert_array_equal(
            after_add.embeddings_of([int_id]), before.embeddings_of([int_id])
        )
    removed = remove_templates(index_dir, [templates[3].id, "new-1"])
    after_remove = load_index(index_dir)
    assert removed.removed == 2 and after_remove.manifest.count == 31
    assert set(after_remove.templates) == kept - {template_int_id(templates[3].id)} | {
        template_int_id("revised-0")
    }
    assert after_remove.manifest.parent == after_add.version


def test_add_of_known_templates_writes_no_version(index_dir: Path, templates, embedder) -> None:
    before = list_versions(index_dir)
    result = add_templates(index_dir, templates, lambda _live: embedder)
    assert not result.created_version and result.unchanged == len(templates)
    assert list_versions(index_dir) == before


def test_bad_removals_change_nothing(index_dir: Path, templates) -> None:
    before = list_versions(index_dir)
    with pytest.raises(ValueError, match=r"not in live version.*does-not-exist"):
        remove_templates(index_dir, ["does-not-exist"])
    with pytest.raises(ValueError, match="empty"):
        remove_templates(index_dir, [t.id for t in templates])
    assert list_versions(index_dir) == before


def test_fingerprint_mismatch_is_refused_with_the_building_model_named(
    index_dir: Path, templates, embedder: Embedder
) -> None:
    manifest = load_index(index_dir).manifest
    other = ShiftedEmbedder(embedder)
    with pytest.raises(EmbedderMismatchError, match="built by embedder 'bundled:all-MiniLM"):
        verify_embedder(manifest, other)
    before = list_versions(index_dir)
    extra = dataclasses.replace(templates[0], id="extra", source_query="Another question?")
    with pytest.raises(EmbedderMismatchError):
        add_templates(index_dir, [extra], lambda _live: other)
    assert list_versions(index_dir) == before


def test_float_noise_from_another_device_is_not_a_mismatch(
    index_dir: Path, embedder: Embedder
) -> None:
    manifest = load_index(index_dir).manifest
    noisy = NoisyEmbedder(embedder)
    verify_embedder(manifest, noisy)
    assert noisy.fingerprint()  # a display string, whether or not the noise flipped it


def test_rollback_and_prune(index_dir: Path) -> None:
    old, live = list_versions(index_dir)
    rollback(index_dir, old)
    assert load_index(index_dir).version == old
    with pytest.raises(IndexArtifactError, match="no such index version"):
        rollback(index_dir, "20990101T000000000000Z-deadbeef")
    with pytest.raises(IndexArtifactError, match="not a version name"):
        rollback(index_dir, "../versions")
    assert prune(index_dir, keep=1).removed == []  # the newest is kept and the live one never goes
    rollback(index_dir, live)
    leftover = index_dir / "versions" / ".staging-20990101T000000000000Z-crashed"
    leftover.mkdir()
    assert prune(index_dir, keep=1).removed == [old]
    assert list_versions(index_dir) == [live] and not leftover.exists()


def test_damaged_version_cannot_be_made_live(index_dir: Path) -> None:
    old, live = list_versions(index_dir)
    _damage(version_dir(index_dir, old) / "templates.jsonl", "altered")
    with pytest.raises(IndexArtifactError, match="checksum mismatch"):
        rollback(index_dir, old)
    assert current_version(index_dir) == live


@pytest.mark.parametrize("index_type", ["hnsw", "ivf"])
def test_approximate_types_search_with_per_call_parameters(
    tmp_path: Path, templates, embedder, index_type: str
) -> None:
    build_index(templates, tmp_path, embedder, settings=IndexSettings(index_type))
    loaded = load_index(tmp_path)
    assert loaded.manifest.index_type == index_type
    gsm8k = np.array([i for i, t in loaded.templates.items() if t.task == "gsm8k"])
    query = loaded.embeddings_of([int(gsm8k[0])])
    scores, ids = loaded.search(query, k=5, allowed_ids=gsm8k, ef_search=16, nprobe=1)
    found = [i for i in ids[0] if i >= 0]
    assert found[0] == gsm8k[0] and set(found) <= set(gsm8k)
    assert list(scores[0][: len(found)]) == sorted(scores[0][: len(found)], reverse=True)


def test_a_shared_id_filter_searches_as_the_ids_it_holds(tmp_path: Path, templates, embedder):
    build_index(templates, tmp_path, embedder)
    loaded = load_index(tmp_path)
    gsm8k = np.array([i for i, t in loaded.templates.items() if t.task == "gsm8k"])
    query = loaded.embeddings_of([int(gsm8k[0])])
    shared = IdFilter(gsm8k)
    by_filter = [loaded.search(query, k=4, allowed_ids=shared) for _ in range(2)]
    by_array = loaded.search(query, k=4, allowed_ids=gsm8k)
    for scores, ids in by_filter:  # reusable: the second search gives the same answer
        assert ids.tolist() == by_array[1].tolist() and set(ids[0]) <= set(gsm8k)
        np.testing.assert_allclose(scores, by_array[0])
