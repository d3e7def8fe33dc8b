"""Bounded echoes of untrusted input in error messages.

A message that repeats a 16 KB id or a 30 MB environment value is itself the failure (gRPC
refuses status details over its metadata limit; logs fill up), so every error message that names
a value the caller sent goes through ``echo``. It imports only the standard library.
"""

from __future__ import annotations

#: Characters of an echoed value kept in a message; the rest is counted, not shown.
MAX_ECHO_CHARS = 80
#: Longest whole message sent as gRPC status details, far below the 8 KiB of metadata a client
#: accepts by default.
MAX_MESSAGE_CHARS = 2_000


def echo(value: object, limit: int = MAX_ECHO_CHARS) -> str:
    """``repr(value)`` (control and bidi characters escaped), cut to ``limit`` characters."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(value) if isinstance(value, str) else text
    return f"{text[:limit]!r}{_cut_note(text)}"


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else text[:limit] + _cut_note(text)


def _cut_note(text: str) -> str:
    return f"... ({len(text)} characters)"
