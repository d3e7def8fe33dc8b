"""Hostile configuration values are refused where they enter, with one line naming the value.

Server options come from flags, ``THOUGHTBANK_*`` variables and a TOML file; the client takes
``--server HOST:PORT`` (or ``$THOUGHTBANK_SERVER``) and numbers such as ``--timeout``. A port that
wraps (-1, 70000), a boolean or a fraction read as a port, an empty variable, ``inf``, ``nan`` and
overflowing values are each either refused with a message naming the option, or (an empty
variable) treated as unset; never a traceback, never a busy loop.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from thoughtbank.cli import build_parser, main
from thoughtbank.retriever.cli import DEFAULT_SERVER
from thoughtbank.retriever.serving.config import (
    ServerConfig,
    add_config_flags,
    config_from_args,
)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return parser.parse_args(argv)


def _config(argv: tuple[str, ...] = (), environ: dict[str, str] | None = None) -> ServerConfig:
    return config_from_args(_parse("--index", "idx", *argv), environ or {})


BAD_FLAGS = [
    (("--port", "-1"), "port must be an integer in [0, 65535], got -1"),
    (("--port", "70000"), "port must be an integer in [0, 65535], got 70000"),
    (("--metrics-port", "65536"), "metrics_port must be an integer in [0, 65535], got 65536"),
    (
        ("--reload-interval", "nan"),
        "reload_interval must be a finite number in [0, 86400], got nan",
    ),
    (("--batch-wait-ms", "inf"), "batch_wait_ms must be a finite number in [0, 1000], got inf"),
    (("--keepalive-time", "1e12"), "keepalive_time must be a finite number in [1, 86400]"),
    (("--reload-interval", "1e-9"), "reload_interval must be 0 (off) or at least 0.1 s"),
    (("--grace=-inf",), "grace must be a finite number in [0, 3600], got -inf"),
    (("--max-message-bytes", "4294967296"), "max_message_bytes must be an integer in [1, "),
    (("--log-level", "LOUD"), "log_level must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_out_of_range_flag_names_the_option_and_value(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match="invalid server configuration") as raised:
        _config(argv)
    assert message in str(raised.value)


@pytest.mark.parametrize("text", ["true", "0.9", "1e3", "0x10", "", " "])
def test_a_port_flag_takes_digits_only(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse("--port", text)
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("usage:") or "argument --port: port must" in error


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("THOUGHTBANK_PORT", "true", "THOUGHTBANK_PORT: port must be an integer, got 'true'"),
        ("THOUGHTBANK_PORT", "0.9", "THOUGHTBANK_PORT: port must be an integer, got '0.9'"),
        ("THOUGHTBANK_PORT", "-1", "port must be an integer in [0, 65535], got -1"),
        ("THOUGHTBANK_MAX_BATCH_SIZE", "1e12", "max_batch_size must be an integer, got '1e12'"),
        ("THOUGHTBANK_MAX_BATCH_SIZE", "10" * 20, "max_batch_size must be an integer in [1, 4096]"),
        ("THOUGHTBANK_GRACE", "inf", "grace must be a finite number in [0, 3600], got inf"),
        ("THOUGHTBANK_RELOAD_INTERVAL", "NaN", "reload_interval must be a finite number"),
    ],
)
def test_bad_environment_value_names_the_variable_or_option(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        _config(environ={variable: value})
    assert message in str(raised.value)


@pytest.mark.parametrize("variable", ["THOUGHTBANK_MAX_BATCH_SIZE", "THOUGHTBANK_PORT"])
def test_an_empty_environment_variable_counts_as_unset(variable: str) -> None:
    assert _config(environ={variable: ""}) == _config()


def test_an_echoed_value_is_cut_short() -> None:
    with pytest.raises(ValueError) as raised:
        _config(environ={"THOUGHTBANK_PORT": "x" * 1_000_000})
    assert len(str(raised.value)) < 300 and "(1000000 characters)" in str(raised.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("port = true", "port must be an integer, got True"),
        ("port = 0.9", "port must be an integer, got 0.9"),
        ("port = 70000", "port must be an integer in [0, 65535], got 70000"),
        ("batch_wait_ms = inf", "batch_wait_ms must be a finite number in [0, 1000], got inf"),
        ("reload_interval = nan", "reload_interval must be a finite number in [0, 86400], got nan"),
        ('max_batch_size = ""', "max_batch_size must not be empty"),
    ],
)
def test_typed_toml_values_are_checked_not_cast(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "server.toml").write_text(line + "\n")
    with pytest.raises(ValueError) as raised:
        _config(("--config", str(tmp_path / "server.toml")))
    assert message in str(raised.value)


def test_direct_construction_refuses_what_the_sources_refuse() -> None:
    with pytest.raises(ValueError, match=r"port must be an integer in \[0, 65535\], got 70000"):
        ServerConfig(index_dir=Path("idx"), port=70_000)
    with pytest.raises(ValueError, match=r"batch_workers must be an integer, got 2\.5"):
        ServerConfig(index_dir=Path("idx"), batch_workers=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "argv",
    [
        ("--reload-interval", "nan"),
        ("--batch-wait-ms", "inf"),
        ("--port", "70000"),
    ],
)
def test_serve_refuses_in_one_line(
    argv: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--index", str(tmp_path), *argv]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("thoughtbank: error: invalid server")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:-1",
        "127.0.0.1:70000",
        "127.0.0.1:0",
        "127.0.0.1",
        "h:true",
        ":80",
        "a:1,b",
        "a:1,,b:2",
        "dns:///",
    ],
)
def test_client_refuses_a_server_address_without_a_valid_port(
    address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["info", "--server", address])
    assert done.value.code == 2
    assert "argument --server: expected HOST:PORT (port in [1, 65535])" in (capsys.readouterr().err)


def test_client_takes_an_empty_server_variable_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THOUGHTBANK_SERVER", "")
    assert build_parser().parse_args(["info"]).server == DEFAULT_SERVER


def test_client_refuses_a_bad_server_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("THOUGHTBANK_SERVER", "localhost:99999")
    with pytest.raises(SystemExit):
        main(["info"])
    assert "got 'localhost:99999'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--timeout", "nan"), "argument --timeout: must be a finite number, got 'nan'"),
        (("--timeout", "inf"), "argument --timeout: must be a finite number, got 'inf'"),
        (("--min-score", "nan"), "argument --min-score: must be a finite number"),
        (("--diversity", "2"), "argument --diversity: must be in [0, 1], got '2'"),
    ],
)
def test_client_numbers_are_finite(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["query", "q", "--server", "127.0.0.1:1", *argv])
    assert message in capsys.readouterr().err
