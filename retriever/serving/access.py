"""Who may read which namespace: bearer tokens and the namespaces each one grants.

Tokens come from ``--auth-token-file`` (one token, every namespace) and ``--auth-tokens-file``
(TOML, one ``[[token]]`` table each, with ``token = "..."`` or ``sha256 = "hex"`` and
``namespaces = ["math", "support"]``, ``["*"]`` for all). Only digests are kept in memory, and a
presented token is compared with every one of them in constant time, so neither the time taken
nor an early exit tells a caller how close it came.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from thoughtbank.echo import echo
from thoughtbank.retriever.errors import AuthenticationError, PermissionDeniedError

log = logging.getLogger("thoughtbank.server.access")

ALL_NAMESPACES = "*"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Grant:
    """The namespaces one caller may read; ``None``: every namespace."""

    namespaces: frozenset[str] | None

    def allows(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def check(self, namespace: str) -> None:
        """``PermissionDeniedError`` unless this grant reads ``namespace``; the message names
        only what the caller sent, so a refusal tells nothing about what the server holds."""
        if not self.allows(namespace):
            raise PermissionDeniedError(f"this token may not read namespace {echo(namespace)}")


EVERYTHING = Grant(None)


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    grant: Grant


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AccessTable:
    """The tokens a server accepts; with none configured, every caller reads everything."""

    def __init__(self, entries: Sequence[_Entry] = ()) -> None:
        self._entries = tuple(entries)

    @property
    def open(self) -> bool:
        return not self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, token_file: Path | None, tokens_file: Path | None) -> AccessTable:
        """The table of ``--auth-token-file`` and ``--auth-tokens-file``; ``ValueError``
        saying what is wrong with either."""
        entries = []
        if token_file is not None:
            token = token_file.read_text().strip()
            if not token:
                raise ValueError(f"auth token file {token_file} is empty")
            entries.append(_Entry(_digest(token), EVERYTHING))
        if tokens_file is not None:
            entries.extend(_read_tokens_file(tokens_file))
        return cls(entries)

    def authenticate(self, sent: Iterable[tuple[str, Any]]) -> Grant:
        """The grant of the one ``authorization: Bearer <token>`` header in ``sent``."""
        if self.open:
            return EVERYTHING
        # Every value counts: with a dict, a second header would silently win over the first.
        values = [value for key, value in sent if key == "authorization"]
        if not values:
            raise AuthenticationError(
                "missing credentials: send metadata 'authorization: Bearer <token>'"
            )
        if len(values) > 1:
            raise AuthenticationError(f"{len(values)} authorization headers sent; send exactly one")
        scheme, _, token = str(values[0]).partition(" ")
        digest = _digest(token if scheme == "Bearer" else "\0not a bearer token")
        found = None
        for entry in self._entries:  # no early exit: every entry costs the same
            if hmac.compare_digest(digest, entry.digest) and found is None:
                found = entry.grant
        if found is None:
            raise AuthenticationError("invalid bearer token")
        return found


def _read_tokens_file(path: Path) -> list[_Entry]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read auth tokens file {path}: {exc}") from exc
    unknown = sorted(set(data) - {"token"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; expected [[token]] tables")
    tables = data.get("token", [])
    if not isinstance(tables, list) or not tables:
        raise ValueError(f"{path}: no [[token]] tables")
    return [_entry(table, f"{path}: token #{n + 1}") for n, table in enumerate(tables)]


def _entry(table: Any, where: str) -> _Entry:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: not a table")
    unknown = sorted(set(table) - {"token", "sha256", "namespaces"})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if ("token" in table) == ("sha256" in table):
        raise ValueError(f"{where}: give exactly one of token or sha256")
    if "token" in table:
        token = table["token"]
        if not isinstance(token, str) or not token.strip() or token != token.strip():
            raise ValueError(f"{where}: token must be a non-empty string without spaces around")
        digest = _digest(token)
    else:
        hexed = table["sha256"]
        if not isinstance(hexed, str) or not _SHA256_HEX.fullmatch(hexed.lower()):
            raise ValueError(f"{where}: sha256 must be 64 hex digits")
        digest = bytes.fromhex(hexed)
    return _Entry(digest, _grant(table.get("namespaces"), where))


def _grant(namespaces: Any, where: str) -> Grant:
    if not isinstance(namespaces, list) or not namespaces:
        raise ValueError(f"{where}: namespaces must be a non-empty list (['*'] for all)")
    if not all(isinstance(n, str) and n for n in namespaces):
        raise ValueError(f"{where}: namespaces must be names")
    if ALL_NAMESPACES in namespaces:
        return EVERYTHING
    return Grant(frozenset(namespaces))


def reload_access(
    current: AccessTable, token_file: Path | None, tokens_file: Path | None
) -> AccessTable:
    """The table read again (SIGHUP); on any error the current one stays, and the error is
    logged."""
    try:
        table = AccessTable.load(token_file, tokens_file)
    except (OSError, ValueError) as exc:
        log.error("auth tokens not reloaded; the previous ones stay", extra={"reason": str(exc)})
        return current
    log.info("auth tokens reloaded", extra={"tokens": len(table)})
    return table
