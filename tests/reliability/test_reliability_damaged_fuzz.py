"""Hypothesis: hostile edits of any file of a version, checksums recomputed, either load into an
engine that answers a query or raise ``IndexDamagedError``. No other exception leaves the loader,
so no caller needs a list of what parsers raise, and none can be left incomplete."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from damaged_versions import live_version, rehash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from thoughtbank.index import EmbedderMismatchError, IndexDamagedError, load_index
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.retriever.types import RetrievalQuery

pytestmark = pytest.mark.slow

Edit = Callable[[Path], None]

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
ARRAYS = hnp.arrays(
    st.sampled_from([np.float32, np.float64, np.int64, np.bool_]),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
)
# FAISS is only truncated: its reader trusts the sizes in its header, and a forged one asks
# for any amount of memory (the checksum, with the manifest, is the guard there).
TRUNCATED_FILES = [
    "index.faiss",
    "templates.jsonl",
    "embeddings.npy",
    "manifest.json",
    "task_classifier.npz",
    "task_classifier.json",
]
JSON_FIELDS = {
    "manifest.json": [
        "version",
        "dimension",
        "count",
        "files",
        "task_counts",
        "index_type",
        "index_params",
        "embedder_probes",
        "min_scores",
        "task_routing",
        "sources",
    ],
    "task_classifier.json": ["format", "classes", "config"],
    "templates.jsonl": ["id", "task", "text", "source_query", "source_models", "sources", "fields"],
}


def _set_field(path: Path, key: str, value: object) -> None:
    """Set ``key`` of the JSON object in ``path`` (of the first line, for JSONL)."""
    records = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
    first = json.loads(records[0])
    first[key] = value
    path.write_text("\n".join([json.dumps(first), *records[1:]]) + "\n")


def _truncate(path: Path, share: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])


@st.composite
def edits(draw: st.DrawFn) -> Edit:
    """One hostile edit of one file of a version folder."""
    kind = draw(st.sampled_from(["field", "array", "truncate"]))
    if kind == "field":
        name = draw(st.sampled_from(sorted(JSON_FIELDS)))
        key, value = draw(st.sampled_from(JSON_FIELDS[name])), draw(JSON_VALUES)
        return lambda folder: _set_field(folder / name, key, value)
    if kind == "array":
        array = draw(ARRAYS)
        return lambda folder: np.save(folder / "embeddings.npy", array)
    name, share = draw(st.sampled_from(TRUNCATED_FILES)), draw(st.floats(0, 0.999))
    return lambda folder: _truncate(folder / name, share)


@pytest.fixture(scope="module")
def version_folder(demo_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    index_dir = tmp_path_factory.mktemp("fuzzed") / "index"
    shutil.copytree(demo_index, index_dir)
    yield index_dir / "versions" / live_version(index_dir)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(edit=edits())
def test_any_edit_loads_and_answers_or_is_damaged(version_folder: Path, embedder, edit: Edit):
    originals = {path: path.read_bytes() for path in version_folder.iterdir()}
    try:
        edit(version_folder)
        rehash(version_folder)
        try:
            loaded = load_index(version_folder.parent.parent)
        except IndexDamagedError:
            return
        try:
            engine = RetrievalEngine(loaded, embedder)
        except EmbedderMismatchError:
            return  # edited probe embeddings: another model as far as vectors go
        assert engine.retrieve(RetrievalQuery("How many apples are left?")).hits
    finally:
        for path, content in originals.items():
            path.write_bytes(content)
