"""The token table of ``--auth-token-file`` and ``--auth-tokens-file``: who reads what."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from thoughtbank.retriever.errors import AuthenticationError, PermissionDeniedError
from thoughtbank.retriever.serving.access import AccessTable, reload_access


def _bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def _table(tmp_path: Path, text: str, token: str | None = None) -> AccessTable:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(text)
    single = None
    if token is not None:
        single = tmp_path / "token"
        single.write_text(token + "\n")
    return AccessTable.load(single, tokens)


def test_each_token_grants_its_namespaces(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"s2").hexdigest().upper()
    table = _table(
        tmp_path,
        f'[[token]]\ntoken = "s1"\nnamespaces = ["math", "support"]\n'
        f'[[token]]\nsha256 = "{digest}"\nnamespaces = ["*"]\n',
        token="root",
    )
    math = table.authenticate(_bearer("s1"))
    assert math.allows("math") and math.allows("support") and not math.allows("default")
    with pytest.raises(PermissionDeniedError, match="may not read namespace 'other'"):
        math.check("other")
    assert table.authenticate(_bearer("s2")).allows("anything")
    assert table.authenticate(_bearer("root")).allows("anything")


@pytest.mark.parametrize(
    "metadata",
    [[], _bearer("nope"), [("authorization", "s1")], _bearer("s1") + _bearer("s1")],
)
def test_missing_unknown_or_doubled_credentials_are_unauthenticated(
    tmp_path: Path, metadata: list[tuple[str, str]]
) -> None:
    table = _table(tmp_path, '[[token]]\ntoken = "s1"\nnamespaces = ["math"]\n')
    with pytest.raises(AuthenticationError):
        table.authenticate(metadata)


def test_without_tokens_everyone_reads_everything() -> None:
    table = AccessTable.load(None, None)
    assert table.open and table.authenticate([]).allows("any")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no \\[\\[token\\]\\] tables"),
        ("[[token]]\nnamespaces = ['a']\n", "exactly one of token or sha256"),
        ("[[token]]\ntoken = 'a'\nsha256 = 'b'\nnamespaces = ['a']\n", "exactly one"),
        ("[[token]]\nsha256 = 'abc'\nnamespaces = ['a']\n", "64 hex digits"),
        ("[[token]]\ntoken = 'a'\n", "namespaces must be a non-empty list"),
        ("[[token]]\ntoken = 'a'\nnamespaces = []\n", "non-empty list"),
        ("[[token]]\ntoken = ' a'\nnamespaces = ['a']\n", "without spaces"),
        ("[[token]]\ntoken = 'a'\nnamespace = ['a']\n", "unknown key\\(s\\) namespace"),
        ("[token]\ntoken = 'a'\n", "not a table|no \\[\\[token\\]\\] tables"),
        ("tokens = 1\n", "unknown key\\(s\\) tokens"),
        ("[[token]\n", "cannot read auth tokens file"),
    ],
)
def test_a_bad_tokens_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _table(tmp_path, text)


def test_a_failed_reload_keeps_the_tokens_in_force(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text('[[token]]\ntoken = "s1"\nnamespaces = ["math"]\n')
    table = AccessTable.load(None, tokens)
    tokens.write_text("[[token]\n")
    assert reload_access(table, None, tokens) is table
    tokens.write_text('[[token]]\ntoken = "s2"\nnamespaces = ["math"]\n')
    reloaded = reload_access(table, None, tokens)
    assert reloaded.authenticate(_bearer("s2")).allows("math")
    with pytest.raises(AuthenticationError):
        reloaded.authenticate(_bearer("s1"))
