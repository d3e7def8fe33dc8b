"""R1: `thoughtbank mine` over 41 kinds of malformed logs, each in its own file between good rows.

Black-box: the CLI mines the files (two runs: malformed contents, then paths that are no file);
the test reads only the rejects file and the templates JSONL. Each malformed row or file must be
reported with its file, line and a reason, and every good row (each a distinct query) must come
out as exactly one template.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from reliability_support import run_cli

from thoughtbank.templates import ThoughtTemplate, read_templates

pytestmark = pytest.mark.slow

HUGE_FIELD_BYTES = 10 * 1024 * 1024
CSV_HEADER = "task_name,query_id,query,llm,response,performance,cost,llm_judge"


@dataclass(frozen=True)
class Expectation:
    """What mining one malformed file must give.

    ``bad_lines`` are the lines that must be reported (``None``: the file as a whole, any line).
    ``kept_queries`` must each become a template; with ``kept_prefix`` only those before the
    first reported line can be (the rest of a truncated file is unreadable by definition).
    """

    path: Path
    kept_queries: tuple[str, ...]
    bad_lines: tuple[int, ...] | None
    kept_prefix: bool = False


class GoodRows:
    """Valid rows, each with its own query so that each must become its own template."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, **changes: Any) -> dict[str, Any]:
        self.count += 1
        n = self.count
        row = {
            "task_name": "reliability",
            "query_id": f"q{n}",
            "query": f"Fault-suite question {n}: what is {n} plus {n}?",
            "llm": "model-a",
            "response": f"Add {n} and {n}. {n} + {n} = {2 * n}. The answer is {2 * n}.",
            "performance": 1.0,
            "cost": 0.001,
            "llm_judge": 0.9,
        }
        row.update(changes)
        return {k: v for k, v in row.items() if v is not DROP}


DROP = object()
Line = TypeVar("Line", bytes, str)


def jsonl_line(row: Any) -> bytes:
    return json.dumps(row, allow_nan=True).encode()


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def row_between_good_rows(
    name: str, bad: Callable[[GoodRows], bytes]
) -> Callable[..., Expectation]:
    """A JSONL file: good row, the malformed line 2, good row."""

    def write(folder: Path, good: GoodRows) -> Expectation:
        first, bad_line, last = good(), bad(good), good()
        lines = [jsonl_line(first), bad_line, jsonl_line(last)]
        path = write_lines(folder / f"{name}.jsonl", lines)
        return Expectation(path, (first["query"], last["query"]), (2,))

    return write


def mutated(**changes: Any) -> Callable[[GoodRows], bytes]:
    """A good row with some fields changed (or dropped with ``DROP``)."""
    return lambda good: jsonl_line(good(**changes))


def raw(line: Line) -> Callable[[GoodRows], Line]:
    """A fixed malformed line (JSONL bytes or CSV text), whatever the good rows are."""
    return lambda good: line


def duplicate_rows(folder: Path, good: GoodRows) -> Expectation:
    first, last = good(), good()
    lines = [jsonl_line(first), jsonl_line(first), jsonl_line(last)]
    return Expectation(
        write_lines(folder / "duplicate_rows.jsonl", lines), (first["query"], last["query"]), (2,)
    )


def invalid_utf8(folder: Path, good: GoodRows) -> Expectation:
    first, bad, last = good(), good(), good()
    bad_line = jsonl_line(bad).replace(b"Add", b"Add \xff\xfe\xc3(")
    lines = [jsonl_line(first), bad_line, jsonl_line(last)]
    return Expectation(
        write_lines(folder / "invalid_utf8.jsonl", lines), (first["query"], last["query"]), (2,)
    )


def csv_file(
    name: str,
    rows: list[str],
    good_queries: tuple[str, ...],
    bad_lines: tuple[int, ...] | None,
    header: str = CSV_HEADER,
    encoding: str = "utf-8",
) -> Callable[[Path], Expectation]:
    def write(folder: Path) -> Expectation:
        path = folder / f"{name}.csv"
        path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
        return Expectation(path, good_queries, bad_lines)

    return write


def csv_row(row: dict[str, Any], header: str = CSV_HEADER) -> str:
    """A CSV record with every field quoted (the test values hold no quotes)."""
    return ",".join(f'"{row.get(column, "")}"' for column in header.split(","))


def csv_case(
    name: str, bad: Callable[[GoodRows], str], bad_last: bool = False, encoding: str = "utf-8"
) -> Callable[..., Expectation]:
    """CSV with two good rows and one malformed record at line 3 (or last, at line 4)."""

    def write(folder: Path, good: GoodRows) -> Expectation:
        first, last = good(), good()
        bad_text = bad(good)
        rows = (
            [csv_row(first), csv_row(last), bad_text]
            if bad_last
            else [csv_row(first), bad_text, csv_row(last)]
        )
        return csv_file(
            name, rows, (first["query"], last["query"]), (4 if bad_last else 3,), encoding=encoding
        )(folder)

    return write


def csv_without_performance(folder: Path, good: GoodRows) -> Expectation:
    header = CSV_HEADER.replace(",performance", "")
    rows = [csv_row(good(), header) for _ in range(2)]
    return csv_file("csv_missing_column", rows, (), None, header=header)(folder)


def file_level(name: str, make: Callable[[Path], None]) -> Callable[..., Expectation]:
    def write(folder: Path, good: GoodRows) -> Expectation:
        path = folder / name
        make(path)
        return Expectation(path, (), None)

    return write


def truncated_gzip(folder: Path, good: GoodRows) -> Expectation:
    rows = [good() for _ in range(400)]
    data = gzip.compress(b"".join(jsonl_line(r) + b"\n" for r in rows))
    path = folder / "truncated.jsonl.gz"
    path.write_bytes(data[: len(data) * 3 // 5])
    return Expectation(path, tuple(r["query"] for r in rows), None, kept_prefix=True)


def random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(8).randbytes(64 * 1024))


MALFORMED: dict[str, Callable[[Path, GoodRows], Expectation]] = {
    "invalid_json": row_between_good_rows("invalid_json", raw(b'{"task_name": "x", "query": ')),
    "trailing_garbage": row_between_good_rows(
        "trailing_garbage", lambda good: jsonl_line(good()) + b" trailing words"
    ),
    "json_array": row_between_good_rows("json_array", raw(b"[1, 2, 3]")),
    "json_null": row_between_good_rows("json_null", raw(b"null")),
    "json_string": row_between_good_rows("json_string", raw(b'"just a string"')),
    "invalid_utf8": invalid_utf8,
    "nul_bytes": row_between_good_rows("nul_bytes", raw(b"\x00\x00\x00\x00")),
    "missing_response": row_between_good_rows("missing_response", mutated(response=DROP)),
    "missing_query": row_between_good_rows("missing_query", mutated(query=DROP)),
    "missing_performance": row_between_good_rows("missing_performance", mutated(performance=DROP)),
    "query_not_string": row_between_good_rows("query_not_string", mutated(query=12345)),
    "task_is_list": row_between_good_rows("task_is_list", mutated(task_name=["a", "b"])),
    "llm_null": row_between_good_rows("llm_null", mutated(llm=None)),
    "performance_text": row_between_good_rows("performance_text", mutated(performance="high")),
    "performance_list": row_between_good_rows("performance_list", mutated(performance=[1.0])),
    "performance_nan": row_between_good_rows("performance_nan", mutated(performance=math.nan)),
    "performance_inf": row_between_good_rows("performance_inf", mutated(performance=math.inf)),
    "performance_above_one": row_between_good_rows(
        "performance_above_one", mutated(performance=1.5)
    ),
    "performance_negative": row_between_good_rows(
        "performance_negative", mutated(performance=-0.25)
    ),
    "judge_out_of_range": row_between_good_rows("judge_out_of_range", mutated(llm_judge=7)),
    "cost_negative": row_between_good_rows("cost_negative", mutated(cost=-1)),
    "cost_text": row_between_good_rows("cost_text", mutated(cost="cheap")),
    "empty_response": row_between_good_rows("empty_response", mutated(response="")),
    "whitespace_query": row_between_good_rows("whitespace_query", mutated(query=" \n\t ")),
    "empty_task": row_between_good_rows("empty_task", mutated(task_name="")),
    "huge_field": row_between_good_rows(
        "huge_field", mutated(response="word " * (HUGE_FIELD_BYTES // 5))
    ),
    "duplicate_rows": duplicate_rows,
    "csv_extra_fields": csv_case("csv_extra_fields", lambda good: csv_row(good()) + ',"x","y"'),
    "csv_missing_fields": csv_case(
        "csv_missing_fields", lambda good: ",".join(csv_row(good()).split(",")[:4])
    ),
    "csv_performance_text": csv_case(
        "csv_performance_text", lambda good: csv_row(good(performance="n/a"))
    ),
    "csv_broken_quoting": csv_case(
        "csv_broken_quoting",
        raw('reliability,q0,"a quote never closed,model-a,text,1.0'),
        bad_last=True,
    ),
    "csv_latin1": csv_case(
        "csv_latin1", lambda good: csv_row(good(response="café au lait")), encoding="latin-1"
    ),
    "csv_missing_column": csv_without_performance,
    "empty_jsonl": file_level("empty.jsonl", lambda p: p.write_bytes(b"")),
    "empty_csv": file_level("empty.csv", lambda p: p.write_bytes(b"")),
    "directory_instead_of_file": file_level("a_directory.jsonl", lambda p: p.mkdir()),
    "missing_file": file_level("does_not_exist.jsonl", lambda p: None),
    "truncated_gzip": truncated_gzip,
    "not_gzip": file_level("not_gzip.jsonl.gz", lambda p: p.write_bytes(b'{"query": "x"}\n')),
    "random_bytes": file_level("random.jsonl", random_bytes),
    "unsupported_extension": file_level("logs.txt", lambda p: p.write_text("hello\n")),
}


#: Command-line paths that are no readable log file. Refusing such a path before mining anything
#: (a one-line error naming it, exit code 2, nothing written) is as good as reporting it as a
#: reject, so either is accepted; each is mined in a run of its own beside a good file, so that a
#: refusal hides nothing else.
PATH_KINDS = ("directory_instead_of_file", "missing_file", "unsupported_extension")
CONTENT_KINDS = tuple(sorted(k for k in MALFORMED if k not in PATH_KINDS))


@dataclass(frozen=True)
class MiningRun:
    """One `thoughtbank mine` run over some malformed files: what came out of it."""

    expectations: dict[str, Expectation]
    returncode: int
    stderr: str
    rejects: list[dict[str, Any]]
    summary: dict[str, Any]
    templates: list[ThoughtTemplate]

    @property
    def out(self) -> Path:
        return self.expectations["good_file"].path.parent / "out" / "templates.jsonl"

    def rejects_of(self, path: Path) -> list[dict[str, Any]]:
        return [r for r in self.rejects if Path(r["file"]) == path]


def good_file(folder: Path, good: GoodRows) -> Expectation:
    rows = [good(), good()]
    return Expectation(
        write_lines(folder / "good.jsonl", [jsonl_line(r) for r in rows]),
        tuple(r["query"] for r in rows),
        (),
    )


def mine_kinds(folder: Path, kinds: Sequence[str], good: GoodRows) -> MiningRun:
    """Write the files of ``kinds`` (and one good file) into ``folder``; mine them in one run."""
    folder.mkdir()
    expectations = {kind: MALFORMED[kind](folder, good) for kind in kinds}
    expectations["good_file"] = good_file(folder, good)
    out, rejects = folder / "out" / "templates.jsonl", folder / "out" / "rejects.jsonl"
    # --no-merge: the good rows differ only in numbers, so their templates are near-duplicates
    # that merging would fold together; one template per good row keeps the count exact.
    run = run_cli(
        "mine",
        *(e.path for e in expectations.values()),
        "--out",
        out,
        "--rejects",
        rejects,
        "--workers",
        "2",
        "--no-merge",
    )
    return MiningRun(
        expectations,
        run.returncode,
        run.stderr,
        [json.loads(line) for line in rejects.read_text().splitlines()] if rejects.exists() else [],
        json.loads(run.stdout) if run.returncode == 0 else {},
        list(read_templates(out)) if out.exists() else [],
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MiningRun]:
    """The run that mined each kind, by kind: one for all contents, one per bad path."""
    folder, good = tmp_path_factory.mktemp("malformed"), GoodRows()
    content = mine_kinds(folder / "content", CONTENT_KINDS, good)
    by_kind = {kind: mine_kinds(folder / kind, [kind], good) for kind in PATH_KINDS}
    return {**dict.fromkeys(CONTENT_KINDS, content), **by_kind}


def finished(run: MiningRun) -> MiningRun:
    assert run.returncode == 0, f"mine did not finish: {run.stderr}"
    return run


def test_at_least_thirty_kinds_of_malformed_input() -> None:
    assert len(CONTENT_KINDS) + len(PATH_KINDS) == len(MALFORMED) >= 30


@pytest.mark.parametrize("kind", CONTENT_KINDS)
def test_each_malformed_input_is_reported_with_file_line_and_reason(runs, kind: str) -> None:
    run = finished(runs[kind])
    expectation = run.expectations[kind]
    reported = run.rejects_of(expectation.path)
    assert reported, f"{kind}: nothing reported for {expectation.path}"
    assert all(isinstance(r["line"], int) and r["line"] >= 0 for r in reported)
    assert all(isinstance(r["reason"], str) and r["reason"].strip() for r in reported)
    if expectation.bad_lines is not None:
        assert sorted({r["line"] for r in reported}) == list(expectation.bad_lines)


@pytest.mark.parametrize("kind", CONTENT_KINDS)
def test_every_good_row_beside_a_malformed_one_is_kept(runs, kind: str) -> None:
    run = finished(runs[kind])
    expectation = run.expectations[kind]
    expected = set(expectation.kept_queries)
    if expectation.kept_prefix:
        first_bad = min(r["line"] for r in run.rejects_of(expectation.path))
        assert first_bad > 1, "a truncated gzip loses only its unreadable tail"
        expected = set(expectation.kept_queries[: first_bad - 1])
    mined_queries = {t.source_query for t in run.templates}
    assert mined_queries & set(expectation.kept_queries) == expected


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_a_path_that_is_no_log_file_is_reported_or_refused_clearly(runs, kind: str) -> None:
    run = runs[kind]
    path = run.expectations[kind].path
    if run.returncode == 0:
        assert run.rejects_of(path) and all(r["reason"].strip() for r in run.rejects_of(path))
        assert set(run.expectations["good_file"].kept_queries) <= {
            t.source_query for t in run.templates
        }
    else:
        assert run.returncode == 2
        assert str(path) in run.stderr and "Traceback" not in run.stderr
        assert not run.out.exists(), "a refused run must not write a partial output"


@pytest.mark.parametrize("kind", [CONTENT_KINDS[0], *PATH_KINDS])
def test_good_files_are_kept_whole_and_counts_add_up(runs, kind: str) -> None:
    run = runs[kind]
    if kind in PATH_KINDS and run.returncode != 0:
        pytest.skip(f"{kind} was refused up front, so nothing was mined")
    good = run.expectations["good_file"]
    assert not run.rejects_of(good.path)
    assert set(good.kept_queries) <= {t.source_query for t in run.templates}
    assert len({t.source_query for t in run.templates}) == len(run.templates)
    assert run.summary["templates"] == len(run.templates)
