"""Every `thoughtbank index` command, through the real argument parser, in one lifecycle."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

from thoughtbank.cli import main
from thoughtbank.index import current_version, list_versions, load_index, version_dir
from thoughtbank.templates import read_templates, write_templates


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_index_lifecycle_through_every_command(
    demo_templates: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    index = tmp_path / "index"
    caplog.set_level(logging.INFO, logger="thoughtbank.index")
    code, out, _ = _run(
        capsys,
        "index",
        "build",
        str(demo_templates),
        "--out",
        str(index),
        "--type",
        "ivf",
        "--nprobe",
        "2",
        "--embed",
        "query+template",
    )
    built = json.loads(out)
    assert code == 0 and built["count"] == 32 and built["index_type"] == "ivf"
    assert "embedding 32 templates (query+template)" in caplog.text  # progress is shown
    manifest = load_index(index).manifest
    assert manifest.embed_field == "query+template" and manifest.index_params["nprobe"] == 1
    assert manifest.sources[0].path == str(demo_templates.resolve())

    template = next(iter(read_templates(demo_templates)))
    extra = tmp_path / "extra.jsonl"
    write_templates(
        extra, [dataclasses.replace(template, id="cli-new", source_query="What is 2 + 2?")]
    )
    code, out, _ = _run(capsys, "index", "add", str(extra), "--index", str(index))
    assert code == 0 and json.loads(out)["added"] == 1 and json.loads(out)["count"] == 33
    assert load_index(index).manifest.embed_field == "query+template"  # kept from the parent

    code, out, _ = _run(
        capsys, "index", "remove", "--ids", "cli-new", template.id, "--index", str(index)
    )
    assert code == 0 and json.loads(out)["count"] == 31

    first, second, third = list_versions(index)
    code, out, _ = _run(capsys, "index", "list", "--index", str(index))
    lines = out.splitlines()
    assert code == 0 and [line.split()[-4] for line in lines] == ["32", "33", "31"]
    assert lines[2].startswith(f"* {third}") and lines[0].startswith(f"  {first}")

    code, out, _ = _run(capsys, "index", "rollback", first, "--index", str(index))
    assert code == 0 and current_version(index) == first

    data = version_dir(index, second) / "index.faiss"
    data.write_bytes(data.read_bytes()[:-1])
    code, out, _ = _run(capsys, "index", "verify", "--index", str(index))
    assert code == 0 and out.startswith(f"ok {first}")
    code, out, _ = _run(capsys, "index", "verify", "--index", str(index), "--all")
    assert code == 1 and f"DAMAGED {second}" in out and f"ok {third}" in out

    code, _, err = _run(capsys, "index", "rollback", second, "--index", str(index))
    assert code == 2 and "checksum mismatch" in err and current_version(index) == first

    code, out, _ = _run(capsys, "index", "prune", "--keep", "1", "--index", str(index))
    assert code == 0 and out.startswith("removed 1 version(s)")
    assert list_versions(index) == [first, third]  # the live one is never pruned


def test_cuda_falls_back_to_cpu_with_a_message(
    demo_templates: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from thoughtbank.index.faiss_backend import gpu_available

    if gpu_available():
        pytest.skip("a GPU is visible: benchmarks/gpu_check.py covers this machine")
    code, out, _ = _run(
        capsys,
        "index",
        "build",
        str(demo_templates),
        "--out",
        str(tmp_path / "index"),
        "--type",
        "flat",
        "--device",
        "cuda",
    )
    assert code == 0 and json.loads(out)["count"] == 32
    assert "building the index on the CPU" in caplog.text
    assert "embedding on the CPU" in caplog.text


def test_bad_input_gets_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "index", "list", "--index", str(tmp_path))
    assert code == 2 and "not a thoughtbank index" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    code, _, err = _run(capsys, "index", "build", str(bad), "--out", str(tmp_path / "i"))
    assert code == 2 and "bad.jsonl:1: not a thought template" in err
