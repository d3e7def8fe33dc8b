"""``thoughtbank browse`` and ``serve --ui-port`` as real processes: the page is served, the
serve tokens and their namespaces apply to it, and an install without the ui extra is told
what to install."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from thoughtbank import extras
from thoughtbank.cli import main
from thoughtbank.retriever.serving.process import ServerProcess

from conftest import free_port

pytestmark = pytest.mark.slow
STARTUP_TIMEOUT_S = 120


def test_browse_serves_the_live_version(hostile_index) -> None:
    command = [sys.executable, "-m", "thoughtbank.cli", "browse", "--index", str(hostile_index[0])]
    with subprocess.Popen([*command, "--port", "0"], stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("thoughtbank: browsing "), line
            url = line.rsplit(" at ", 1)[1].strip()
            assert url.startswith("http://127.0.0.1:")
            page = httpx.get(url + "templates?q=zanzibar", timeout=STARTUP_TIMEOUT_S)
            assert page.status_code == 200 and hostile_index[1].id in page.text
        finally:
            process.terminate()
            process.wait(STARTUP_TIMEOUT_S)


def test_browse_without_the_ui_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(extras, "UI_MODULES", ("no_such_web_library",))
    assert main(["browse", "--index", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "no_such_web_library" in error and extras.UI_INSTALL in error


@pytest.fixture(scope="module")
def index_root(hostile_index, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-root")
    for name in ("alpha", "beta"):
        shutil.copytree(hostile_index[0], root / name)
    return root


def test_serve_ui_port_applies_the_serve_tokens(index_root: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    digest = hashlib.sha256(b"alpha-secret").hexdigest()
    tokens.write_text(f'[[token]]\nsha256 = "{digest}"\nnamespaces = ["alpha"]\n')
    ui_port = free_port()
    arguments = (
        "--ui-port",
        str(ui_port),
        "--auth-tokens-file",
        str(tokens),
        "--log-level",
        "WARNING",
    )
    with ServerProcess(None, index_root=index_root, extra_args=arguments):
        url = f"http://127.0.0.1:{ui_port}"
        assert httpx.get(url + "/").status_code == 401
        alpha = {"Authorization": "Bearer alpha-secret"}
        page = httpx.get(url + "/", headers=alpha)
        assert page.status_code == 200 and "alpha ·" in page.text
        assert "beta" not in page.text.split("<main>")[0]  # lists only what the token reads
        assert httpx.get(url + "/?namespace=beta", headers=alpha).status_code == 403
        hits = httpx.get(url + "/query?q=How many apples are left?&k=2", headers=alpha)
        assert hits.status_code == 200 and 'id="prompt"' in hits.text
