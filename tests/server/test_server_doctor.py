"""``thoughtbank doctor`` against a real index, real servers (plaintext and TLS) and the
client-only install, through the command line's ``main``."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_testkit import (
    SelfSignedCertificate,
    add_corrupted_version,
    copy_index,
    make_self_signed_certificate,
)

import thoughtbank.doctor
from thoughtbank.cli import main
from thoughtbank.retriever.serving.process import ServerProcess


def doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, dict]]:
    """Exit code and the checks by name, from ``thoughtbank doctor --json ARGV``."""
    code = main(["doctor", "--json", *argv])
    checks = json.loads(capsys.readouterr().out)
    return code, {check["name"]: check for check in checks}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCertificate:
    return make_self_signed_certificate(tmp_path_factory.mktemp("doctor-tls"))


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("doctor-token") / "token"
    path.write_text("doctor-secret\n")
    return path


@pytest.fixture(scope="module")
def tls_server(
    demo_index: Path, certificate: SelfSignedCertificate, token_file: Path
) -> Iterator[ServerProcess]:
    """A server with TLS and a bearer token."""
    secured = (
        *("--tls-cert", str(certificate.cert_path), "--tls-key", str(certificate.key_path)),
        *("--auth-token-file", str(token_file)),
    )
    with ServerProcess(demo_index, extra_args=secured) as server:
        yield server


@pytest.fixture
def client_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The light install: an engine requirement is missing."""
    monkeypatch.setattr(thoughtbank.doctor, "missing_engine_module", lambda: "faiss")


@pytest.mark.slow
def test_all_checks_pass_on_a_good_install_index_and_server(
    capsys: pytest.CaptureFixture[str], demo_index: Path, demo_server: ServerProcess
) -> None:
    code = main(["doctor", "--index", str(demo_index), "--server", demo_server.address])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.split()[0] for line in lines] == ["OK"] * 4, lines
    assert "SERVING, plaintext, index version" in lines[3]


@pytest.mark.slow
def test_a_damaged_index_is_reported_with_its_reason(
    capsys: pytest.CaptureFixture[str], demo_index: Path, tmp_path: Path
) -> None:
    index_dir = copy_index(demo_index, tmp_path / "index")
    add_corrupted_version(index_dir, "v-truncated")
    code, checks = doctor(capsys, "--index", str(index_dir))
    assert code == 1
    assert checks["index"]["status"] == "FAIL"
    assert checks["index"]["detail"].startswith("DAMAGED v-truncated")
    assert "thoughtbank index rollback" in checks["index"]["fix"]


def test_an_index_check_without_the_engine_names_the_install(
    capsys: pytest.CaptureFixture[str], client_only: None, tmp_path: Path
) -> None:
    code, checks = doctor(capsys, "--index", str(tmp_path))
    assert code == 1
    assert checks["index"] == {
        "name": "index",
        "status": "FAIL",
        "detail": "engine not installed: pip install '.[cpu]'",
        "fix": "pip install '.[cpu]' (or '.[gpu]')",
    }


def test_the_client_only_install_skips_engine_checks_and_checks_the_server(
    capsys: pytest.CaptureFixture[str], client_only: None, demo_server: ServerProcess
) -> None:
    code, checks = doctor(capsys, "--server", demo_server.address)
    assert code == 0
    for name in ("model cache", "backend"):
        assert checks[name]["status"] == "SKIP"
        assert checks[name]["detail"] == "engine not installed: pip install '.[cpu]'"
    assert checks[f"server {demo_server.address}"]["status"] == "OK"


def test_no_server_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str], client_only: None
) -> None:
    address = f"127.0.0.1:{closed_port()}"
    code, checks = doctor(capsys, "--server", address)
    assert code == 1
    assert checks[f"server {address}"]["detail"].startswith("nothing listens there")
    assert "thoughtbank serve" in checks[f"server {address}"]["fix"]


@pytest.mark.slow  # starts its own TLS server
def test_tls_and_the_token_are_detected_and_asked_for(
    capsys: pytest.CaptureFixture[str],
    client_only: None,
    tls_server: ServerProcess,
    certificate: SelfSignedCertificate,
    token_file: Path,
) -> None:
    name = f"server {tls_server.address}"
    code, checks = doctor(capsys, "--server", tls_server.address)
    assert (code, checks[name]["detail"]) == (1, "the server speaks TLS")
    assert "--tls-ca" in checks[name]["fix"]

    with_tls = ("--server", tls_server.address, "--tls-ca", str(certificate.cert_path))
    code, checks = doctor(capsys, *with_tls)
    assert (code, checks[name]["detail"]) == (
        1,
        "UNAUTHENTICATED: missing credentials: send metadata 'authorization: Bearer <token>'",
    )
    assert "--token-file" in checks[name]["fix"]

    code, checks = doctor(capsys, *with_tls, "--token-file", str(token_file))
    assert code == 0
    assert checks[name]["detail"].startswith("SERVING, TLS, index version")


def test_tls_asked_of_a_plaintext_server_is_refused(
    capsys: pytest.CaptureFixture[str],
    client_only: None,
    demo_server: ServerProcess,
    certificate: SelfSignedCertificate,
) -> None:
    argv = ("--server", demo_server.address, "--tls-ca", str(certificate.cert_path))
    code, checks = doctor(capsys, *argv)
    assert code == 1
    assert checks[f"server {demo_server.address}"]["fix"] == "drop --tls-ca"
