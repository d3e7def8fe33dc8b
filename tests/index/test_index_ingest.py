"""``thoughtbank ingest``: new logs become new versions, each file once, also when watched."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from thoughtbank.cli import main
from thoughtbank.demo import demo_logs_path
from thoughtbank.index import build_index, current_version, load_index
from thoughtbank.index.ingest import INGEST_DIR, LEDGER_FILE, Ingester
from thoughtbank.templates import ExtractiveDistiller, MiningOptions, mine_templates, read_templates


def _split_demo_logs(folder: Path) -> tuple[Path, Path]:
    """The demo logs' first 16 queries and the other 16, as two files."""
    rows = [json.loads(line) for line in demo_logs_path().read_text().splitlines() if line]
    queries = list(dict.fromkeys(r["query_id"] for r in rows))
    first = {q for q in queries[:16]}
    old, new = folder / "old.jsonl", folder / "new.jsonl"
    old.write_text("".join(json.dumps(r) + "\n" for r in rows if r["query_id"] in first))
    new.write_text("".join(json.dumps(r) + "\n" for r in rows if r["query_id"] not in first))
    return old, new


@pytest.fixture
def index_and_new_logs(tmp_path: Path, embedder) -> tuple[Path, Path]:
    old, new = _split_demo_logs(tmp_path)
    mined = tmp_path / "old.templates.jsonl"
    mine_templates([old], mined, ExtractiveDistiller())
    index_dir = tmp_path / "index"
    build_index(list(read_templates(mined)), index_dir, embedder)
    return index_dir, new


def test_a_file_is_ingested_once_even_renamed(
    index_and_new_logs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir, new = index_and_new_logs
    before = load_index(index_dir)
    assert main(["ingest", str(new), "--index", str(index_dir), "--no-merge"]) == 0
    out = capsys.readouterr().out
    after = load_index(index_dir)
    assert after.version != before.version and after.manifest.count == before.manifest.count + 16
    assert f"ingested new.jsonl: 16 templates, 16 new, live version {after.version}" in out
    renamed = shutil.copy(new, tmp_path / "renamed.jsonl")
    assert main(["ingest", str(new), str(renamed), "--index", str(index_dir), "--no-merge"]) == 0
    assert capsys.readouterr().out.count("ingested before; skipped") == 2
    assert current_version(index_dir) == after.version
    ledger = (index_dir / INGEST_DIR / LEDGER_FILE).read_text().splitlines()
    assert [json.loads(line)["version"] for line in ledger] == [after.version]


def test_ingest_needs_logs_or_a_folder_to_watch(
    index_and_new_logs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir, _ = index_and_new_logs
    assert main(["ingest", "--index", str(index_dir)]) == 2
    assert "give log files, --watch DIR, or both" in capsys.readouterr().err


def test_a_watched_folder_takes_complete_files_once(
    index_and_new_logs: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file renamed in is ingested once settled; a .part file is left alone, a file that is
    not a log is reported and skipped; a restarted watcher does not ingest a file again."""
    index_dir, new = index_and_new_logs
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "half-written.jsonl.part").write_text(new.read_text()[:100])
    (incoming / "notes.txt").write_text("not a log")
    first = load_index(index_dir).version
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        ingester = Ingester(index_dir, ExtractiveDistiller(), MiningOptions())
        ingester.watch(incoming, 0.05, 0.2, lambda done: seen.append(done.name), stop.is_set)

    watcher = threading.Thread(target=watch)
    watcher.start()
    shutil.copy(new, tmp_path / "staged.jsonl")
    (tmp_path / "staged.jsonl").rename(incoming / "day-1.jsonl")
    deadline = time.monotonic() + 120
    while current_version(index_dir) == first:
        assert time.monotonic() < deadline, "the watched file was not ingested"
        time.sleep(0.05)
    time.sleep(0.5)  # more polls: the file must not be ingested twice
    stop.set()
    watcher.join(timeout=60)
    assert seen == ["day-1.jsonl"]
    assert "notes.txt: not ingested" in caplog.text
    second = Ingester(index_dir, ExtractiveDistiller(), MiningOptions())
    assert second.ingest(incoming / "day-1.jsonl") is None
