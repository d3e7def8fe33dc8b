"""Damaged versions through every command that reads an index: one clear DAMAGED line with the
reason and a non-zero exit, never a traceback; `prune` keeps an intact version; manifest paths
stay inside their version folder.

The commands run in-process through the real argument parser (``thoughtbank.cli.main``), so an
exception that escapes them fails the test instead of printing a traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from damaged_versions import (
    CURRENT_DAMAGE,
    VERSION_DAMAGE,
    copy_version,
    live_version,
    point_current_at,
    write_current,
)

from thoughtbank.cli import main
from thoughtbank.index import IndexDamagedError, list_versions, load_index, prune

DAMAGED_NAME = "99990101T000000000000Z-damaged"


@pytest.fixture
def index_dir(demo_index: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "index"
    shutil.copytree(demo_index, copy)
    return copy


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(params=sorted(VERSION_DAMAGE))
def damaged(request: pytest.FixtureRequest, index_dir: Path) -> tuple[Path, str, str]:
    """(index, the intact version, the reason): a damaged copy of the live version is live."""
    damage, reason = VERSION_DAMAGE[request.param]
    intact = live_version(index_dir)
    copy_version(index_dir, DAMAGED_NAME, damage)
    point_current_at(index_dir, DAMAGED_NAME)
    return index_dir, intact, reason


def test_loading_any_damaged_version_raises_the_one_typed_error(
    damaged: tuple[Path, str, str],
) -> None:
    index_dir, _, reason = damaged
    with pytest.raises(IndexDamagedError, match=reason) as raised:
        load_index(index_dir)
    assert str(raised.value).startswith(f"DAMAGED {DAMAGED_NAME}: ")


def test_verify_and_list_report_the_damage_and_exit_non_zero(
    damaged: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir, intact, reason = damaged
    code, out, _ = run(capsys, "index", "verify", "--index", index_dir, "--all")
    assert code == 1 and f"ok {intact}" in out
    assert f"DAMAGED {DAMAGED_NAME}: " in out and reason in out
    code, out, _ = run(capsys, "index", "list", "--index", index_dir)
    assert code in (0, 1) and DAMAGED_NAME in out  # the manifest alone may look fine


def test_rollback_to_a_damaged_version_is_refused(
    damaged: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir, intact, reason = damaged
    point_current_at(index_dir, intact)
    code, _, err = run(capsys, "index", "rollback", DAMAGED_NAME, "--index", index_dir)
    assert code == 2 and f"DAMAGED {DAMAGED_NAME}: " in err and reason in err
    assert live_version(index_dir) == intact


def test_query_on_a_damaged_index_says_damaged(
    damaged: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir, _, reason = damaged
    code, _, err = run(capsys, "query", "How many apples?", "--index", index_dir)
    assert code == 2 and f"DAMAGED {DAMAGED_NAME}: " in err and reason in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", sorted(CURRENT_DAMAGE))
def test_a_damaged_current_is_reported_by_every_command(
    kind: str, index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, reason = CURRENT_DAMAGE[kind]
    versions = list_versions(index_dir)
    write_current(index_dir, content)
    for command in ("verify", "list"):
        code, out, _ = run(capsys, "index", command, "--index", index_dir)
        assert code == 1 and "DAMAGED CURRENT: " in out and reason in out
        assert len(out) < 1_000  # the 30 MB are not echoed
    code, out, _ = run(capsys, "index", "prune", "--keep", "1", "--index", index_dir)
    assert code == 1 and "DAMAGED CURRENT: " in out
    assert list_versions(index_dir) == versions  # one version, intact: kept
    code, _, err = run(capsys, "query", "How many apples?", "--index", index_dir)
    assert code == 2 and "DAMAGED CURRENT: " in err and reason in err


def test_prune_never_removes_the_last_intact_version(
    index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CURRENT names the newest version, which is damaged: the intact one serving is kept."""
    intact = live_version(index_dir)
    damage, _ = VERSION_DAMAGE["embeddings-0d"]
    copy_version(index_dir, DAMAGED_NAME, damage)
    point_current_at(index_dir, DAMAGED_NAME)
    code, out, _ = run(capsys, "index", "prune", "--keep", "1", "--index", index_dir)
    assert code == 1 and f"DAMAGED {DAMAGED_NAME}: " in out
    assert list_versions(index_dir) == [intact, DAMAGED_NAME]


def test_prune_keeps_what_a_server_serves_while_current_names_a_damaged_version(
    index_dir: Path,
) -> None:
    """A served, then B (damaged) named in CURRENT: the server still serves A, not the newer C."""
    served = live_version(index_dir)
    damage, _ = VERSION_DAMAGE["npz-truncated"]
    copy_version(index_dir, "99990101T000000000000Z-b-damaged", damage)
    point_current_at(index_dir, "99990101T000000000000Z-b-damaged")
    copy_version(index_dir, "99990101T000000000000Z-c-intact", source=served)
    result = prune(index_dir, keep=1)
    assert result.removed == [] and list(result.damaged) == ["99990101T000000000000Z-b-damaged"]


def test_prune_keeps_an_intact_version_when_every_one_it_would_keep_is_damaged(
    index_dir: Path,
) -> None:
    intact = live_version(index_dir)
    damage, _ = VERSION_DAMAGE["template-sources-a-string"]
    copy_version(index_dir, "00000101T000000000000Z-damaged-live", damage)
    copy_version(index_dir, "99990101T000000000000Z-damaged-newest", damage, source=intact)
    point_current_at(index_dir, "00000101T000000000000Z-damaged-live")
    result = prune(index_dir, keep=1)
    assert result.removed == [] and intact in list_versions(index_dir)
    assert sorted(result.damaged) == sorted(set(list_versions(index_dir)) - {intact})


def test_prune_removes_damaged_versions_it_does_not_keep(index_dir: Path) -> None:
    intact = live_version(index_dir)
    damage, _ = VERSION_DAMAGE["manifest-is-a-list"]
    copy_version(index_dir, "00000101T000000000000Z-old-damaged", damage)
    copy_version(index_dir, "99990101T000000000000Z-newest")
    point_current_at(index_dir, "99990101T000000000000Z-newest")
    result = prune(index_dir, keep=1)
    assert result.removed == ["00000101T000000000000Z-old-damaged", intact]
    assert result.damaged == {}
    assert list_versions(index_dir) == ["99990101T000000000000Z-newest"]


@pytest.mark.parametrize("kind", ["manifest-path-escapes", "manifest-path-absolute"])
def test_manifest_paths_are_confined_to_their_version_folder(
    kind: str, index_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damage, _ = VERSION_DAMAGE[kind]
    folder = copy_version(index_dir, DAMAGED_NAME, damage)
    code, out, _ = run(capsys, "index", "verify", "--index", index_dir, "--all")
    assert code == 1 and f"DAMAGED {DAMAGED_NAME}: " in out
    assert f"{folder / 'manifest.json'}: " in out and "outside its version folder" in out
