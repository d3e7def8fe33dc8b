"""Log readers: each format, column mapping, every reject reason and damaged files."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow
import pyarrow.parquet
import pytest
from mining_logs import row, write_jsonl

from thoughtbank.templates.readers import RejectSink, check_log_paths, iter_log_records
from thoughtbank.templates.spool import GroupSpool

FUSIONBENCH_COLUMNS = [
    "task_name",
    "task_id",
    "task_description",
    "task_description_embedding",
    "query",
    "query_embedding",
    "ground_truth",
    "metric",
    "llm",
    "input_price",
    "output_price",
    "input_tokens_num",
    "output_tokens_num",
    "performance",
    "cost",
    "response",
    "llm_description",
]


def read(paths: list[Path], tmp_path: Path, **kwargs) -> tuple[list, list[dict]]:
    """(records, rejects as dicts) of reading ``paths``."""
    rejects_path = tmp_path / "rejects.jsonl"
    sink = RejectSink(rejects_path)
    records = list(iter_log_records(paths, sink, **kwargs))
    sink.close()
    lines = rejects_path.read_text().splitlines() if rejects_path.exists() else []
    return records, [json.loads(line) for line in lines]


def fusionbench_csv(path: Path, rows: list[dict], tail: str = "") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, FUSIONBENCH_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "task_id": r["query_id"]})
        handle.write(tail)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_jsonl_plain_and_gzip(tmp_path: Path, compress: bool) -> None:
    path = write_jsonl(
        tmp_path / ("log.jsonl.gz" if compress else "log.jsonl"),
        [row(), row(llm="model-b", performance=0.0)],
        compress,
    )
    records, rejects = read([path], tmp_path)
    assert [(r.llm, r.performance, r.query_id, r.ground_truth) for r in records] == [
        ("model-a", 1.0, "q1", "7"),
        ("model-b", 0.0, "q1", "7"),
    ]
    assert rejects == []


def test_fusionbench_csv_layout_with_multiline_responses(tmp_path: Path) -> None:
    rows = [row(), row(llm="model-b", response='Line one, with "quotes".\nLine two\n#### 7')]
    path = fusionbench_csv(tmp_path / "log.csv", rows)
    records, rejects = read([path], tmp_path)
    assert rejects == []
    assert records[1].response == 'Line one, with "quotes".\nLine two\n#### 7'
    assert records[1].query_id == "q1"  # FusionBench's task_id stands in for query_id
    assert records[0].cost == 0.001 and records[0].llm_judge is None


def test_parquet_in_batches(tmp_path: Path) -> None:
    rows = [row(query_id=f"q{i}") for i in range(20)] + [row(performance=None)]
    path = tmp_path / "log.parquet"
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path, row_group_size=7)
    records, rejects = read([path], tmp_path)
    assert [r.query_id for r in records] == [f"q{i}" for i in range(20)]
    assert [(r["line"], r["reason"]) for r in rejects] == [(21, "missing column(s): performance")]


def test_column_map_and_performance_scale(tmp_path: Path) -> None:
    renamed = {
        "task_name": "gsm8k",
        "prompt": "What is 2 + 2?",
        "model": "m",
        "response": "4",
        "performance": 100,
        "query_id": 5,
    }
    path = write_jsonl(tmp_path / "log.jsonl", [renamed, {**renamed, "performance": 101}])
    records, rejects = read(
        [path], tmp_path, column_map={"query": "prompt", "llm": "model"}, performance_scale=100
    )
    assert [(r.query, r.llm, r.performance, r.query_id) for r in records] == [
        ("What is 2 + 2?", "m", 1.0, "5")
    ]
    assert rejects[0]["reason"] == "performance must be a number in [0, 100], got 101"


REJECTED_ROWS = [
    ("{not json", "not valid JSON: Expecting property name enclosed in double quotes"),
    ("[1, 2]", "row is not an object but list"),
    (row(query=None), "missing column(s): query"),
    (
        {k: v for k, v in row().items() if k not in ("llm", "response")},
        "missing column(s): llm, response",
    ),
    (row(llm=7), "llm is not a string but int"),
    (row(response="  "), "response is empty"),
    (row(performance="high"), "performance is not a number: 'high'"),
    (row(performance=1.5), "performance must be a number in [0, 1], got 1.5"),
    (row(performance=-0.5), "performance out of range: -0.5"),
    (row(performance=float("nan")), "performance must be a number in [0, 1], got nan"),
    (row(cost="cheap"), "cost is not a number: 'cheap'"),
    (row(cost=-1), "cost out of range: -1"),
    (row(llm_judge=3), "llm_judge must be in [0, 1], got 3"),
]


def test_every_reject_reason_with_file_and_line(tmp_path: Path) -> None:
    lines = [row()] + [bad for bad, _ in REJECTED_ROWS] + [row(llm="last")]
    path = write_jsonl(tmp_path / "log.jsonl", lines)
    with path.open("ab") as handle:
        handle.write(b'{"task_name": "\xff"}\n')
    records, rejects = read([path], tmp_path)
    assert [r.llm for r in records] == ["model-a", "last"]
    expected = [(i, reason) for i, (_, reason) in enumerate(REJECTED_ROWS, 2)]
    expected.append((len(lines) + 1, "not UTF-8 text: invalid start byte at byte 15"))
    assert [(r["line"], r["reason"]) for r in rejects] == expected
    assert {r["file"] for r in rejects} == {str(path)}


def test_csv_row_with_more_fields_than_header(tmp_path: Path) -> None:
    too_wide = ",".join("x" * 18) + "\n"
    path = fusionbench_csv(tmp_path / "log.csv", [row()], tail=too_wide)
    records, rejects = read([path], tmp_path)
    assert len(records) == 1
    # the first record's response spans lines 2-4, so the bad record starts on line 5
    assert [(r["line"], r["reason"]) for r in rejects] == [(5, "more fields than the header has")]


def test_truncated_gzip_keeps_rows_before_and_reads_next_file(tmp_path: Path) -> None:
    full = write_jsonl(
        tmp_path / "full.jsonl.gz", [row(query_id=f"q{i}") for i in range(3000)], compress=True
    )
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    other = write_jsonl(tmp_path / "other.jsonl", [row(llm="other")])
    records, rejects = read([damaged, other], tmp_path)
    kept = [r for r in records if r.llm == "model-a"]
    assert 0 < len(kept) < 3000
    assert [r.query_id for r in kept] == [f"q{i}" for i in range(len(kept))]
    assert records[-1].llm == "other"
    assert len(rejects) == 1 and rejects[0]["file"] == str(damaged)
    assert rejects[0]["line"] == len(kept) + 1
    assert rejects[0]["reason"].startswith("file unreadable from here on: Compressed file ended")


def test_corrupt_gzip_data_is_reported_and_the_next_file_read(tmp_path: Path) -> None:
    damaged = write_jsonl(tmp_path / "damaged.jsonl.gz", [row()] * 100, compress=True)
    data = bytearray(damaged.read_bytes())
    data[20:28] = b"\xff" * 8  # inside the deflate stream: zlib.error, not an OSError
    damaged.write_bytes(bytes(data))
    other = write_jsonl(tmp_path / "other.jsonl", [row(llm="other")])
    records, rejects = read([damaged, other], tmp_path)
    assert [r.llm for r in records] == ["other"]
    assert [(r["file"], r["line"]) for r in rejects] == [(str(damaged), 1)]
    assert "Error -3 while decompressing data" in rejects[0]["reason"]


def test_csv_quote_left_open_reports_where_damage_starts(tmp_path: Path) -> None:
    path = fusionbench_csv(
        tmp_path / "log.csv",
        [row(), row(llm="model-b")],
        tail='gsm8k,q9,,,"an unclosed quote\nspanning,lines\n',
    )
    sink = RejectSink()
    records = list(iter_log_records([path], sink))
    assert [r.llm for r in records] == ["model-a", "model-b"]
    assert (sink.count, sink.damaged_files) == (0, 1)
    _, rejects = read([path], tmp_path)
    assert rejects[0]["line"] == 8  # after two records of three lines each and the header
    assert rejects[0]["reason"] == "file unreadable from here on: unexpected end of data"


def test_damaged_parquet_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    records, rejects = read([path], tmp_path)
    assert records == []
    assert rejects[0]["reason"].startswith("file unreadable from here on:")


def test_missing_or_unsupported_files_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such log file"):
        check_log_paths([tmp_path / "absent.jsonl"])
    (tmp_path / "log.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported log format"):
        check_log_paths([tmp_path / "log.txt"])
    with gzip.open(tmp_path / "log.parquet.gz", "wb") as handle:
        handle.write(b"x")
    with pytest.raises(ValueError, match="unsupported log format"):
        check_log_paths([tmp_path / "log.parquet.gz"])


def test_field_over_a_custom_size_limit_is_rejected(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "log.jsonl", [row(response="x" * 200), row(llm="model-b")])
    records, rejects = read([path], tmp_path, max_field_bytes=100)
    assert [r.llm for r in records] == ["model-b"]
    assert rejects == [
        {"file": str(path), "line": 1, "reason": "response is 200 bytes, over the 100-byte limit"}
    ]


def test_duplicate_row_in_a_second_file_is_rejected(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", [row()])
    second = write_jsonl(tmp_path / "b.jsonl", [row(llm="model-b"), row()])
    records, rejects = read([first, second], tmp_path)
    assert [r.llm for r in records] == ["model-a", "model-b"]
    assert [(r["file"], r["line"]) for r in rejects] == [(str(second), 2)]
    assert "duplicate" in rejects[0]["reason"]


def test_bad_utf8_inside_a_multiline_csv_record_costs_only_that_record(tmp_path: Path) -> None:
    path = fusionbench_csv(tmp_path / "log.csv", [row()])
    bad_record_line = path.read_bytes().count(b"\n") + 1
    good_after = row(llm="model-c")
    with path.open("ab") as handle:
        handle.write(
            b'gsm8k,q1,,,"Tom has 3 apples.",,7,em,model-b,,,,,1.0,,'
            b'"line one\nline \xff two\n#### 7",\n'
        )
    fusionbench_csv(tmp_path / "tail.csv", [good_after])
    with path.open("ab") as handle:
        handle.write((tmp_path / "tail.csv").read_bytes().split(b"\n", 1)[1])
    records, rejects = read([path], tmp_path)
    assert [r.llm for r in records] == ["model-a", "model-c"]
    assert [(r["line"], "UTF-8" in r["reason"]) for r in rejects] == [(bad_record_line, True)]


def test_metric_column_in_every_format_and_through_the_spool(tmp_path: Path) -> None:
    rows = [row(metric="numeric_em"), row(llm="model-b")]
    jsonl = write_jsonl(tmp_path / "log.jsonl", rows)
    csv_log = fusionbench_csv(tmp_path / "log.csv", rows)
    parquet = tmp_path / "log.parquet"
    pyarrow.parquet.write_table(
        pyarrow.Table.from_pylist([rows[0], {**rows[1], "metric": None}]), parquet
    )
    for path in (jsonl, csv_log, parquet):
        records, rejects = read([path], tmp_path)
        assert [r.metric for r in records] == ["numeric_em", ""], path
        assert rejects == []
    with GroupSpool(tmp_path) as spool:
        spool.add_all(records)
        (group,) = spool.groups()
    assert group.records == tuple(records)


def test_metric_that_is_not_text_is_rejected(tmp_path: Path) -> None:
    records, rejects = read([write_jsonl(tmp_path / "log.jsonl", [row(metric=3)])], tmp_path)
    assert records == []
    assert [r["reason"] for r in rejects] == ["metric is not a string but int"]
