"""Running commands of a fresh venv that the wheel ``make dist`` builds is installed into."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def build_wheel(folder: Path) -> Path:
    """The same ``pip wheel --no-deps`` as ``make dist``, into ``folder``."""
    command = (sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", folder)
    built = run(*command, PACKAGE_ROOT, cwd=folder)
    assert built.returncode == 0, built.stderr
    (wheel,) = folder.glob("thoughtbank-*.whl")
    return wheel


def fresh_venv(folder: Path) -> Path:
    """A new venv's python in ``folder``."""
    created = run(sys.executable, "-m", "venv", folder, cwd=folder.parent)
    assert created.returncode == 0, created.stderr
    return folder / "bin" / "python"
