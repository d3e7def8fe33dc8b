"""Why a client command could not reach its server, said so a person knows what to do.

UNAVAILABLE has several causes a user fixes differently: nothing listens, the server speaks
TLS and the client does not (or the reverse), or the server is up and still loading its index.
"""

from __future__ import annotations

import argparse
import functools
import socket
import ssl
from collections.abc import Callable

import grpc

from thoughtbank.retriever.errors import (
    INDEX_LOADING_MESSAGE,
    DeadlineExceededError,
    IndexUnavailableError,
    ThoughtbankError,
)

Command = Callable[[argparse.Namespace], int]
# Long enough for a TLS handshake on a loaded machine, short next to the call's own deadline.
TLS_PROBE_TIMEOUT_S = 3.0


def host_and_port(address: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[v6]:PORT`` too) split, or None for a ``unix:`` socket."""
    if address.startswith("unix:"):
        return None
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def speaks_tls(address: str) -> bool:
    """Whether a TLS handshake with ``address`` succeeds (certificates not checked: this only
    asks which protocol the server speaks)."""
    target = host_and_port(address)
    if target is None:
        return False
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(target, timeout=TLS_PROBE_TIMEOUT_S) as raw,
            context.wrap_socket(raw, server_hostname=target[0]),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


def _unavailable_advice(args: argparse.Namespace, details: str) -> str:
    where = f"the thoughtbank server at {args.server}"
    if INDEX_LOADING_MESSAGE in details:
        return (
            f"{where} is running and still loading its index; retry in a moment, or pass --wait "
            "to wait for it (up to --timeout)."
        )
    if args.tls_ca is None and speaks_tls(args.server):
        return (
            f"{where} speaks TLS and this client connected without it; "
            "pass --tls-ca CA.pem (the certificate that signed the server's)."
        )
    if args.tls_ca is not None and "handshake" in details.lower():
        return (
            f"{where} did not complete a TLS handshake ({details}); it may serve plaintext "
            "(drop --tls-ca) or use a certificate --tls-ca does not sign."
        )
    return (
        f"{where} is not available ({details}).\n"
        "Start one with `thoughtbank serve --index INDEX_DIR --port PORT`, point "
        "--server (or $THOUGHTBANK_SERVER) at a running one, or use --index INDEX_DIR "
        "to query an index in-process."
    )


def _explained(args: argparse.Namespace, exc: ThoughtbankError) -> ThoughtbankError:
    if exc.code == grpc.StatusCode.UNAVAILABLE:
        return IndexUnavailableError(_unavailable_advice(args, exc.message))
    if exc.code == grpc.StatusCode.DEADLINE_EXCEEDED and args.wait:
        return DeadlineExceededError(
            f"waited {args.timeout:g} s (--timeout) for the thoughtbank server at {args.server} "
            "to answer and it did not: start one with `thoughtbank serve --index INDEX_DIR "
            "--port PORT`, or raise --timeout if it takes longer to start."
        )
    return exc


def explain_connection_errors(command: Command) -> Command:
    """Turn UNAVAILABLE, and a ``--wait`` that ran out, into what to do about them."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except ThoughtbankError as exc:
            explained = _explained(args, exc)
            if explained is exc or getattr(args, "index", None) is not None:
                raise
            raise explained from exc

    return run
