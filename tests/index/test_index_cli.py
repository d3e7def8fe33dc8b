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

    code, out, err = _run(
        capsys, "index", "remove", "--ids", "cli-new", template.id, "no-such", "--index", str(index)
    )
    removed = json.loads(out)
    assert code == 0 and removed["count"] == 31 and removed["removed"] == 2
    assert removed["not_found"] == ["no-such"] and "nothing done for them: no-such" in err

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


def test_building_into_a_live_index_names_the_version_it_replaces(
    demo_templates: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    code, out, err = _run(capsys, "index", "build", str(demo_templates), "--out", str(index))
    first = json.loads(out)["version"]
    assert code == 0 and "replaced" not in err
    code, out, err = _run(capsys, "index", "build", str(demo_templates), "--out", str(index))
    second = json.loads(out)["version"]
    assert code == 0 and current_version(index) == second
    assert f"replaced live version {first} with {second}" in err
    assert f"thoughtbank index rollback {first} --index {index}" in err


def test_a_log_or_a_folder_is_not_a_templates_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        json.dumps({"task_name": "t", "query": "q", "llm": "m", "response": "r", "performance": 1})
        + "\n"
    )
    for given, message in [
        (log, "looks like a mining log, not templates: run `thoughtbank mine"),
        (tmp_path / "log.jsonl.gz", "looks like a mining log"),
        (tmp_path, "is a directory, not a templates JSONL file"),
    ]:
        if given.suffix == ".gz":
            given.write_bytes(b"")
        with pytest.raises(SystemExit):
            main(["index", "build", str(given), "--out", str(tmp_path / "i")])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "i").exists()
