"""The wheel ``make dist`` builds carries its package data and installs a working command."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest
from wheel_support import fresh_venv, run

from thoughtbank._version import __version__

PACKAGE_DATA = (
    "thoughtbank/py.typed",
    "thoughtbank/protos/thoughtbank/v1/thought_templates.proto",
    "thoughtbank/protos/thoughtbank/v1/thought_templates_pb2.pyi",
    "thoughtbank/demo/demo_logs.jsonl",
)


def test_license_is_the_apache_text_pyproject_declares() -> None:
    license_text = (Path(__file__).resolve().parents[2] / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text


@pytest.mark.slow
def test_wheel_holds_package_data_and_license(built_wheel: Path) -> None:
    names = set(zipfile.ZipFile(built_wheel).namelist())
    assert set(PACKAGE_DATA) <= names
    assert f"thoughtbank-{__version__}.dist-info/licenses/LICENSE" in names


@pytest.mark.slow
def test_installed_wheel_runs_thoughtbank(tmp_path: Path, built_wheel: Path) -> None:
    python = fresh_venv(tmp_path / "venv")
    # Dependencies come from the running interpreter's site-packages: nothing is downloaded.
    (venv_site,) = (tmp_path / "venv" / "lib").glob("python3*/site-packages")
    deps = [entry for entry in sys.path if entry.endswith("site-packages")]
    (venv_site / "zz_deps.pth").write_text("\n".join(deps) + "\n")
    pip = (python, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check")
    installed = run(*pip, built_wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    version = run(tmp_path / "venv" / "bin" / "thoughtbank", "--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert __version__ in version.stdout
    found = run(python, "-c", "import thoughtbank; print(thoughtbank.__file__)", cwd=tmp_path)
    assert Path(found.stdout.strip()).is_relative_to(venv_site), found.stdout
