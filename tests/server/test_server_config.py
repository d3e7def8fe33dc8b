"""Configuration precedence and the micro-batcher, without a server process."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

import pytest

from thoughtbank.retriever.serving.config import add_config_flags, config_from_args
from thoughtbank.retriever.serving.micro_batcher import MicroBatcher
from thoughtbank.retriever.serving.observability import JsonFormatter, TextFormatter


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return parser.parse_args(argv)


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path: Path) -> None:
    toml = tmp_path / "server.toml"
    toml.write_text('index_dir = "/from/file"\nport = 1111\ngrace = 3.5\nmax_batch_size = 8\n')
    environ = {"THOUGHTBANK_PORT": "2222", "THOUGHTBANK_GRACE": "4.5", "UNRELATED": "x"}
    config = config_from_args(_parse("--config", str(toml), "--port", "3333"), environ)
    assert config.port == 3333  # flag
    assert config.grace == 4.5  # environment over file
    assert config.max_batch_size == 8  # file over default
    assert config.index_dir == Path("/from/file")
    assert config.max_query_chars == 32_768  # default


def test_server_table_of_a_shared_toml_file_is_used(tmp_path: Path) -> None:
    toml = tmp_path / "thoughtbank.toml"
    toml.write_text('[server]\nindex_dir = "/idx"\nmetrics_port = 9100\n')
    config = config_from_args(_parse("--config", str(toml)), {})
    assert config.metrics_port == 9100 and config.index_dir == Path("/idx")


@pytest.mark.parametrize(
    ("argv", "environ", "toml", "message"),
    [
        ((), {}, None, "no index (--index INDEX_DIR or --index-root ROOT"),
        (("--index", "i", "--tls-cert", "c"), {}, None, "--tls-cert and --tls-key go together"),
        (
            ("--index", "i"),
            {"THOUGHTBANK_PORT": "eighty"},
            None,
            "THOUGHTBANK_PORT: port must be an integer, got 'eighty'",
        ),
        (("--index", "i"), {}, "prot = 1\n", "unknown option(s) prot"),
        (
            ("--index", "i", "--max-batch-size", "0"),
            {},
            None,
            "max_batch_size must be an integer in",
        ),
        (("--index", "i", "--log-format", "xml"), {}, None, "log_format must be one of json"),
        (("--index", "i", "--max-query-chars", "2000000"), {}, None, "below the message limit"),
    ],
)
def test_bad_configuration_says_what_is_wrong(
    tmp_path: Path, argv: tuple[str, ...], environ: dict, toml: str | None, message: str
) -> None:
    if toml is not None:
        (tmp_path / "c.toml").write_text(toml)
        argv = (*argv, "--config", str(tmp_path / "c.toml"))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_from_args(_parse(*argv), environ)


def test_concurrent_submissions_share_batches_and_keep_their_order() -> None:
    sizes: list[int] = []

    async def scenario() -> list[str]:
        batcher = MicroBatcher(
            lambda items, cores: [i.upper() for i in items],
            max_batch_size=4,
            max_wait_s=0.01,
            on_batch=sizes.append,
        )
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(f"q{i}") for i in range(10)))
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) == [f"Q{i}" for i in range(10)]
    assert sum(sizes) == 10 and max(sizes) == 4 and len(sizes) < 10


def test_a_failing_batch_fails_each_of_its_callers() -> None:
    def explode(items, cores):
        raise RuntimeError("model crashed")

    async def scenario() -> list[object]:
        batcher = MicroBatcher(explode)
        batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.submit(i) for i in range(3)), return_exceptions=True
            )
        finally:
            await batcher.close()

    outcomes = asyncio.run(scenario())
    assert [str(o) for o in outcomes] == ["model crashed"] * 3


def test_text_logs_keep_the_fields_json_logs_carry() -> None:
    record = logging.LogRecord("thoughtbank.server", logging.INFO, "", 0, "listening", None, None)
    record.port, record.version = 50051, "v1"
    text = TextFormatter().format(record)
    assert text.endswith('INFO thoughtbank.server listening port=50051 version="v1"')
    fields = json.loads(JsonFormatter().format(record))
    assert (fields["port"], fields["version"]) == (50051, "v1")
