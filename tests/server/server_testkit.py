"""Helpers of the server tests: a copy of the demo index, a self-signed certificate, raw stubs."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from thoughtbank.index.artifact import CURRENT_FILE, VERSIONS_DIR
from thoughtbank.protos import pb2, pb2_grpc


def copy_index(source: Path, target: Path) -> Path:
    """A private copy of an index directory, so a test may add versions to it."""
    shutil.copytree(source, target)
    return target


def point_current_at(index_dir: Path, version: str) -> None:
    """Name ``version`` in CURRENT the way the index stage does: write aside, then rename."""
    staging = index_dir / ".CURRENT.test"
    staging.write_text(version + "\n")
    staging.replace(index_dir / CURRENT_FILE)


def add_corrupted_version(index_dir: Path, name: str) -> None:
    """A copy of the live version with a truncated FAISS file, made live in CURRENT."""
    live = (index_dir / CURRENT_FILE).read_text().strip()
    damaged = index_dir / VERSIONS_DIR / name
    shutil.copytree(index_dir / VERSIONS_DIR / live, damaged)
    faiss_file = damaged / "index.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    point_current_at(index_dir, name)


@dataclass(frozen=True)
class SelfSignedCertificate:
    cert_path: Path
    key_path: Path

    @property
    def pem(self) -> bytes:
        return self.cert_path.read_bytes()


def make_self_signed_certificate(folder: Path) -> SelfSignedCertificate:
    """A certificate for localhost and 127.0.0.1, valid for a day, with its private key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return SelfSignedCertificate(cert_path, key_path)


def service_stub(channel: grpc.Channel) -> pb2_grpc.ThoughtTemplateServiceStub:
    return pb2_grpc.ThoughtTemplateServiceStub(channel)


def health_status(channel: grpc.Channel) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="thoughtbank.v1.ThoughtTemplateService"), timeout=10
    )
    return reply.status


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    """The error ``call`` fails with (the test fails if it succeeds)."""
    try:
        call(*args, **kwargs)
    except grpc.RpcError as exc:
        return exc
    raise AssertionError(f"{call} succeeded where an error was expected")


def scrape_metrics(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def retrieve_request(query: str, k: int = 2, **fields) -> pb2.RetrieveRequest:
    return pb2.RetrieveRequest(query=query, k=k, **fields)
