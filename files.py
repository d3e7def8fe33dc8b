"""Reading input files that may be gzip-compressed (by the ``.gz`` suffix), for every stage."""

from __future__ import annotations

import gzip
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
