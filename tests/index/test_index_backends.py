"""Embedding backends: torch and onnx agree, the ONNX cache heals or says how, manifests and
engines keep the backend, and a server on onnx never loads torch."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from thoughtbank.cli import main
from thoughtbank.index import (
    BUNDLED_MODEL,
    EmbedderError,
    EmbedderMismatchError,
    TorchEmbedder,
    build_index,
    load_index,
    verify_embedder,
)
from thoughtbank.index.embedder import Embedder, bundled_model_dir, resolve_backend
from thoughtbank.index.onnx_embedder import OnnxEmbedder, cached_onnx_model
from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.serving.config import ServerConfig
from thoughtbank.retriever.serving.engine import EmbeddingChoice, RetrievalEngine
from thoughtbank.retriever.serving.process import ServerProcess
from thoughtbank.retriever.types import RetrievalQuery
from thoughtbank.templates import ThoughtTemplate, read_templates

SENTENCES = (
    "What is 17 times 23?",
    "Translate 'good morning' into French.",
    "Write a SQL query that counts the orders per customer.",
    "Why is the sky blue?",
    "x",
    "A longer sentence, with punctuation; numbers like 3.14159 and a URL: https://example.com.",
)
LONG_TEXT = " ".join(f"token{i} is, perhaps, un-tokenizable: {i * 7}!" for i in range(400))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The CLI through its real argument parser, as ``test_index_cli`` runs it."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def templates(demo_templates: Path) -> list[ThoughtTemplate]:
    return list(read_templates(demo_templates))


@pytest.fixture(scope="module")
def torch_embedder() -> TorchEmbedder:
    return TorchEmbedder(BUNDLED_MODEL)


@pytest.fixture(scope="module")
def onnx_index(
    templates: list[ThoughtTemplate], embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The demo templates indexed by the default (onnx fp32) embedder."""
    assert isinstance(embedder, OnnxEmbedder)
    index_dir = tmp_path_factory.mktemp("onnx-index")
    build_index(templates, index_dir, embedder)
    return index_dir


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh ``THOUGHTBANK_CACHE`` that this module's ONNX exports go to."""
    return tmp_path_factory.mktemp("onnx-cache")


def _loaded_in(cache: Path, precision: str) -> OnnxEmbedder:
    """An onnx embedder of the bundled model at ``precision``, exported into ``cache``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THOUGHTBANK_CACHE", str(cache))
        onnx = OnnxEmbedder(BUNDLED_MODEL, precision)
        assert onnx.model_path.is_file()  # loads it now, while the cache is set
    return onnx


@pytest.fixture(scope="module")
def onnx_fp32(onnx_cache: Path) -> OnnxEmbedder:
    return _loaded_in(onnx_cache, "fp32")


@pytest.fixture(scope="module")
def onnx_int8(onnx_cache: Path) -> OnnxEmbedder:
    return _loaded_in(onnx_cache, "int8")


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache for one test, set in the environment."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("THOUGHTBANK_CACHE", str(cache))
    yield cache


# resolve_backend


def test_auto_resolves_to_onnx_fp32_on_cpu() -> None:
    """auto is onnx fp32 on a CPU; each backend's auto precision is fp32; asked ones are kept,
    and a precision asked with an auto backend picks the backend that runs it."""
    assert resolve_backend("auto", "auto") == ("onnx", "fp32")
    assert resolve_backend("auto", "auto", device="cpu") == ("onnx", "fp32")
    assert resolve_backend("auto", "int8") == ("onnx", "int8")
    assert resolve_backend("torch", "auto") == ("torch", "fp32")
    assert resolve_backend("onnx", "auto") == ("onnx", "fp32")
    assert resolve_backend("torch", "bf16") == ("torch", "bf16")
    assert resolve_backend("auto", "bf16") == ("torch", "bf16")


def test_unknown_backend_and_precision_are_named() -> None:
    """An unknown name is an EmbedderError quoting it and listing the choices."""
    with pytest.raises(EmbedderError, match=r"unknown embedding backend 'tpu'.*onnx"):
        resolve_backend("tpu", "auto")
    with pytest.raises(EmbedderError, match=r"unknown precision 'fp16'.*int8"):
        resolve_backend("torch", "fp16")


@pytest.mark.parametrize(
    ("backend", "precision", "other"), [("torch", "int8", "onnx"), ("onnx", "bf16", "torch")]
)
def test_precision_the_backend_does_not_run_names_the_other(
    backend: str, precision: str, other: str
) -> None:
    """torch has no int8 and onnx no bf16: the error names the backend that runs it."""
    with pytest.raises(EmbedderError, match=f"use --backend {other} for {precision}"):
        resolve_backend(backend, precision)


def test_server_config_refuses_unknown_backend_and_precision(tmp_path: Path) -> None:
    """ServerConfig validates backend and precision at construction."""
    with pytest.raises(ValueError, match="backend must be one of"):
        ServerConfig(index_dir=tmp_path, backend="tpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        ServerConfig(index_dir=tmp_path, precision="fp16")
    config = ServerConfig(index_dir=tmp_path, backend="onnx", precision="int8")
    assert (config.backend, config.precision) == ("onnx", "int8")


# onnx against torch


def test_onnx_fp32_matches_torch_fp32(embedder: Embedder, torch_embedder: TorchEmbedder) -> None:
    """Same vectors (cosine >= 0.9999), dimension and token counts; each accepts the other's
    probes."""
    assert isinstance(embedder, OnnxEmbedder) and embedder.precision == "fp32"
    onnx_vectors = embedder.encode(SENTENCES)
    torch_vectors = torch_embedder.encode(SENTENCES)
    assert onnx_vectors.dtype == np.float32 and onnx_vectors.shape == torch_vectors.shape
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)
    assert _cosines(onnx_vectors, torch_vectors).min() >= 0.9999
    assert embedder.dimension == torch_embedder.dimension == 384
    long_count = torch_embedder.count_tokens(LONG_TEXT)
    assert long_count > 512  # counted uncut, past the model's sequence length
    assert embedder.count_tokens(LONG_TEXT) == long_count
    assert embedder.probes_match(torch_embedder.probe_vectors)
    assert torch_embedder.probes_match(embedder.probe_vectors)
    assert embedder.encode([]).shape == (0, 384)


def test_onnx_keeps_the_callers_order_across_batches(embedder: Embedder) -> None:
    """Length-sorted batching returns each row where its text was, same as one at a time."""
    assert isinstance(embedder, OnnxEmbedder)
    small_batches = OnnxEmbedder(BUNDLED_MODEL, "fp32", batch_size=2)
    together = small_batches.encode(SENTENCES)
    alone = np.vstack([embedder.encode([s]) for s in SENTENCES])
    assert _cosines(together, alone).min() >= 0.9999


@pytest.mark.slow
def test_int8_stays_near_fp32_and_its_probes_match(
    onnx_fp32: OnnxEmbedder, onnx_int8: OnnxEmbedder
) -> None:
    """int8 vectors are within cosine 0.97 of fp32's, its probes within 0.99."""
    assert onnx_int8.model_path != onnx_fp32.model_path
    assert onnx_int8.model_sha256 != onnx_fp32.model_sha256
    assert _cosines(onnx_int8.encode(SENTENCES), onnx_fp32.encode(SENTENCES)).min() >= 0.97
    assert _cosines(onnx_int8.probe_vectors, onnx_fp32.probe_vectors).min() >= 0.99
    assert onnx_int8.probes_match(onnx_fp32.probe_vectors)
    assert onnx_fp32.probes_match(onnx_int8.probe_vectors)
    assert onnx_int8.dimension == onnx_fp32.dimension


# the ONNX cache


@pytest.mark.slow
def test_export_is_cached_beside_its_checksum(onnx_cache: Path, onnx_fp32: OnnxEmbedder) -> None:
    """The export lies in the cache with a sidecar holding its sha256, which is model_sha256;
    asking again returns the same file without exporting it again."""
    path = onnx_fp32.model_path
    sidecar = path.with_suffix(".sha256")
    assert path.parent == onnx_cache / "onnx" and path.suffix == ".onnx"
    assert sidecar.is_file()
    assert onnx_fp32.model_sha256 == _sha256(path) == sidecar.read_text().strip()
    modified = path.stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THOUGHTBANK_CACHE", str(onnx_cache))
        assert cached_onnx_model(bundled_model_dir(), "fp32") == (path, onnx_fp32.model_sha256)
    assert path.stat().st_mtime_ns == modified
    assert not list(path.parent.glob(".*.tmp"))  # no staging file left behind


@pytest.mark.slow
def test_truncated_cached_file_is_exported_again(
    onnx_fp32: OnnxEmbedder, fresh_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cached file failing its checksum is exported again, with a warning; the new file's
    checksum holds and it embeds as before."""
    cached = fresh_cache / "onnx" / onnx_fp32.model_path.name
    cached.parent.mkdir(parents=True)
    shutil.copy2(onnx_fp32.model_path, cached)
    shutil.copy2(onnx_fp32.model_path.with_suffix(".sha256"), cached.with_suffix(".sha256"))
    with cached.open("r+b") as handle:
        handle.truncate(cached.stat().st_size // 2)
    caplog.set_level(logging.INFO, logger="thoughtbank.index")
    path, digest = cached_onnx_model(bundled_model_dir(), "fp32")
    assert path == cached and "checksum mismatch" in caplog.text
    assert digest == _sha256(path) == path.with_suffix(".sha256").read_text().strip()
    assert path.stat().st_size == onnx_fp32.model_path.stat().st_size
    again = OnnxEmbedder(BUNDLED_MODEL, "fp32")
    assert again.model_path == cached
    assert _cosines(again.encode(SENTENCES), onnx_fp32.encode(SENTENCES)).min() >= 0.9999


def test_unloadable_file_with_good_checksum_says_delete_it(
    embedder: Embedder, fresh_cache: Path
) -> None:
    """Bytes onnxruntime cannot load, with a matching sidecar, are an EmbedderError naming the
    file and saying to delete it; the file is left as it was."""
    assert isinstance(embedder, OnnxEmbedder)
    garbage = fresh_cache / "onnx" / embedder.model_path.name
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"not an onnx model\x00" * 64)
    garbage.with_suffix(".sha256").write_text(_sha256(garbage))
    with pytest.raises(EmbedderError, match="delete it") as caught:
        OnnxEmbedder(BUNDLED_MODEL, "fp32").encode(["hello"])
    assert str(garbage) in str(caught.value)
    assert garbage.read_bytes() == b"not an onnx model\x00" * 64  # not exported over


@pytest.mark.slow
def test_folder_that_cannot_be_exported_names_backend_torch(
    tmp_path: Path, fresh_cache: Path
) -> None:
    """A model folder whose weights are corrupt is an EmbedderError naming --backend torch,
    leaving nothing in the cache."""
    broken = tmp_path / "broken-model"
    shutil.copytree(bundled_model_dir(), broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 1024)
    with pytest.raises(EmbedderError, match="use --backend torch") as caught:
        OnnxEmbedder(str(broken), "fp32").encode(["hello"])
    assert "cannot export" in str(caught.value) and "\n" not in str(caught.value)
    assert not [p for p in (fresh_cache / "onnx").iterdir() if p.suffix != ".lock"]


def test_hub_name_on_onnx_is_refused(fresh_cache: Path) -> None:
    """The onnx backend needs a local folder: a hub name is an EmbedderError naming torch."""
    onnx = OnnxEmbedder("sentence-transformers/all-MiniLM-L6-v2", "fp32")
    with pytest.raises(EmbedderError, match=r"local sentence-transformers folder.*--backend torch"):
        onnx.encode(["hello"])
    assert not (fresh_cache / "onnx").exists()


def test_missing_onnxruntime_names_the_install(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without onnxruntime the onnx backend is an EmbedderError saying how to install it."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(EmbedderError, match="pip install onnxruntime"):
        OnnxEmbedder(BUNDLED_MODEL, "fp32").encode(["hello"])


# manifests and engines


def test_manifest_records_the_onnx_backend(onnx_index: Path, embedder: Embedder) -> None:
    """An onnx-built version records backend, precision and the ONNX file's sha256."""
    assert isinstance(embedder, OnnxEmbedder)
    manifest = load_index(onnx_index).manifest
    assert (manifest.backend, manifest.precision) == ("onnx", "fp32")
    assert manifest.model_sha256 == _sha256(embedder.model_path) == embedder.model_sha256


def test_manifest_records_the_torch_backend(
    templates: list[ThoughtTemplate], torch_embedder: TorchEmbedder, tmp_path: Path
) -> None:
    """A torch-built version records torch fp32 and the safetensors file's sha256."""
    manifest = build_index(templates[:8], tmp_path / "index", torch_embedder)
    assert (manifest.backend, manifest.precision) == ("torch", "fp32")
    assert manifest.model_sha256 == _sha256(bundled_model_dir() / "model.safetensors")
    assert load_index(tmp_path / "index").manifest == manifest


def test_engine_on_onnx_index_with_torch_gives_the_same_hits(
    onnx_index: Path, templates: list[ThoughtTemplate]
) -> None:
    """EmbeddingChoice("torch") serves an onnx-built index with torch fp32 and the same
    top hits as the index's own onnx embedder."""
    default = RetrievalEngine.open(onnx_index)
    on_torch = RetrievalEngine.open(onnx_index, embedding=EmbeddingChoice("torch"))
    assert (default.embedder.backend, default.embedder.precision) == ("onnx", "fp32")
    assert isinstance(on_torch.embedder, TorchEmbedder)
    assert on_torch.embedder.precision == "fp32"
    queries = [RetrievalQuery(t.source_query, k=3) for t in templates[:6]]
    queries.append(RetrievalQuery("How many legs does a spider have?", k=3))
    for ours, theirs in zip(
        default.retrieve_batch(queries), on_torch.retrieve_batch(queries), strict=True
    ):
        assert ours.hits and theirs.hits
        assert ours.hits[0].template.id == theirs.hits[0].template.id
        assert ours.hits[0].score == pytest.approx(theirs.hits[0].score, abs=1e-3)


def test_engine_refuses_an_index_with_another_models_probes(
    onnx_index: Path, embedder: Embedder
) -> None:
    """Probes that are another model's (here: rotated vectors) make the engine and
    verify_embedder refuse, naming the backend the index was built with."""
    index = load_index(onnx_index)
    probes = np.asarray(index.manifest.embedder_probes, dtype=np.float32)
    foreign = np.roll(probes, 97, axis=1)
    assert _cosines(foreign, probes).max() < 0.5  # far apart, as another model's would be
    manifest = dataclasses.replace(index.manifest, embedder_probes=foreign.tolist())
    with pytest.raises(EmbedderMismatchError, match="onnx fp32"):
        RetrievalEngine.of_index(dataclasses.replace(index, manifest=manifest))
    with pytest.raises(EmbedderMismatchError):
        verify_embedder(manifest, embedder)
    verify_embedder(index.manifest, embedder)  # the real probes pass


PROCESS_SCRIPT = """
import json, sys
from pathlib import Path
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.retriever.types import RetrievalQuery
engine = RetrievalEngine.open(Path(sys.argv[1]))
hits = engine.retrieve(RetrievalQuery(sys.argv[2], k=2)).hits
modules = ("torch", "sentence_transformers", "transformers")
print(json.dumps({
    "modules": {name: name in sys.modules for name in modules},
    "model_path": str(engine.embedder.model_path),
    "top": hits[0].template.id,
}))
"""
PROCESS_QUERY = "What is 17 times 23?"


@pytest.fixture(scope="module")
def onnx_process(
    onnx_index: Path,
    onnx_cache: Path,
    onnx_fp32: OnnxEmbedder,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """What a fresh process that opened the onnx index and retrieved once reports."""
    env = {
        **os.environ,
        "THOUGHTBANK_CACHE": str(onnx_cache),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROCESS_SCRIPT, str(onnx_index), PROCESS_QUERY],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path_factory.mktemp("process"),
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_onnx_process_retrieves_from_the_cached_export(
    onnx_process: dict[str, Any], onnx_index: Path, onnx_fp32: OnnxEmbedder
) -> None:
    """The process runs the export already in the shared cache, gets the in-process top hit,
    and loads neither sentence-transformers nor transformers."""
    assert onnx_process["model_path"] == str(onnx_fp32.model_path)
    here = RetrievalEngine.open(onnx_index, onnx_fp32)
    assert onnx_process["top"] == here.retrieve(RetrievalQuery(PROCESS_QUERY)).hits[0].template.id
    assert onnx_process["modules"]["sentence_transformers"] is False
    assert onnx_process["modules"]["transformers"] is False


@pytest.mark.slow
def test_onnx_process_never_imports_torch(onnx_process: dict[str, Any]) -> None:
    """Opening an onnx index and retrieving never imports torch."""
    assert onnx_process["modules"]["torch"] is False


@pytest.mark.slow
def test_server_on_onnx_never_maps_torch(onnx_index: Path, onnx_cache: Path) -> None:
    """A served Retrieve on the onnx backend answers, and the server process never loaded
    torch's library (read from its memory maps, which no import trick can hide)."""
    env = {**os.environ, "THOUGHTBANK_CACHE": str(onnx_cache), "HF_HUB_OFFLINE": "1"}
    with (
        ServerProcess(onnx_index, env=env) as server,
        ThoughtbankClient(server.address) as client,
    ):
        hits = client.retrieve(PROCESS_QUERY, k=2).hits
        maps = Path(f"/proc/{server.pid}/maps").read_text()
    assert hits
    assert "libtorch" not in maps


# CLI


def test_cli_build_torch_int8_fails_naming_onnx(
    demo_templates: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``index build --backend torch --precision int8`` exits non-zero with one line naming
    --backend onnx, and writes no index."""
    out = tmp_path / "index"
    code, stdout, err = _run(
        capsys,
        "index",
        "build",
        str(demo_templates),
        "--out",
        str(out),
        "--backend",
        "torch",
        "--precision",
        "int8",
    )
    assert code != 0 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--backend onnx" in lines[0]
    assert not out.exists()
