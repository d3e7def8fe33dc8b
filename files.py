"""Reading input files that may be gzip-compressed (by the ``.gz`` suffix), for every stage."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import IO, cast


def open_bytes(path: Path) -> IO[bytes]:
    """``path``'s bytes, decompressed when it ends in ``.gz``."""
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def open_text(path: Path) -> IO[str]:
    """``path``'s UTF-8 text, decompressed when it ends in ``.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def sha256_file(path: Path) -> str:
    """Hex sha256 of ``path``'s bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
