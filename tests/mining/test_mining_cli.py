"""``thoughtbank mine`` as a real subprocess: kill -9 mid-run then ``--resume``, and errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mining_logs import many_queries, template_set, write_jsonl

from thoughtbank.cli import main
from thoughtbank.templates.journal import journal_path

from conftest import REPO_ROOT

HERE = Path(__file__).resolve().parent
THOUGHTBANK = Path(sys.executable).with_name("thoughtbank")
# 60 groups at 50 ms a call on 2 workers: about 1.5 s of distilling, time enough to kill it.
# The allow list (a set) checks that the journal fingerprint does not vary between processes.
SLOW_CHAT = [
    "--distiller",
    "chat",
    "--llm",
    "python:mining_fakes:slow_prompt_hash_model",
    "--allow-models",
    "model-a,model-b,model-c,model-d",
    "--workers",
    "2",
    "--no-merge",
    "--no-progress",
]


def mine_command(log: Path, out: Path, *extra: str) -> list[str]:
    return [str(THOUGHTBANK), "mine", str(log), "--out", str(out), *SLOW_CHAT, *extra]


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
    }


def journaled_groups(out: Path) -> int:
    path = journal_path(out)
    return max(0, len(path.read_bytes().splitlines()) - 1) if path.exists() else 0


def kill_after_some_groups(command: list[str], out: Path, groups: int) -> None:
    process = subprocess.Popen(
        command,
        env=environment(),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while journaled_groups(out) < groups and process.poll() is None:
            assert time.monotonic() < deadline, "the job journaled nothing within 60 s"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        returncode = process.wait()
    assert returncode == -signal.SIGKILL, "the job finished before it could be killed"


def test_kill_9_then_resume_gives_the_uninterrupted_template_set(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(60))
    killed = tmp_path / "killed" / "templates.jsonl"
    kill_after_some_groups(mine_command(log, killed), killed, groups=10)
    finished_before = journaled_groups(killed)
    assert 10 <= finished_before < 60
    assert not killed.exists()

    resumed = subprocess.run(
        mine_command(log, killed, "--resume"),
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(resumed.stdout)
    assert summary["groups_resumed"] >= finished_before
    assert summary["llm_calls"] == 60 - summary["groups_resumed"]
    assert summary["input_tokens"] > 0

    whole = tmp_path / "whole" / "templates.jsonl"
    subprocess.run(mine_command(log, whole), env=environment(), check=True, capture_output=True)
    assert len(template_set(whole)) == 60
    assert template_set(killed) == template_set(whole)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--llm", "openai:gpt-4o-mini"], "--llm needs --distiller chat"),
        (["--distiller", "chat"], "--distiller chat needs --llm"),
        (["--distiller", "chat", "--llm", "local:x"], "--llm must be openai:MODEL or python:"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(1))
    assert main(["mine", str(log), "--out", str(tmp_path / "t.jsonl"), *arguments]) == 2
    assert capsys.readouterr().err.startswith(f"thoughtbank: error: {message}")


def test_missing_log_file_is_an_error_before_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "t.jsonl"
    assert main(["mine", str(tmp_path / "absent.jsonl"), "--out", str(out)]) == 2
    assert "absent.jsonl: no such log file" in capsys.readouterr().err
    assert not out.parent.joinpath("t.jsonl.journal").exists()


def interrupt_after_some_groups(
    command: list[str], out: Path, signum: signal.Signals
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` and send ``signum`` once it has journaled a group."""
    process = subprocess.Popen(
        command,
        env=environment(),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while journaled_groups(out) < 1 and process.poll() is None:
        assert time.monotonic() < deadline, "the job journaled nothing within 60 s"
        time.sleep(0.01)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, "", stderr)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_says_what_was_kept_and_how_to_go_on(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(60))
    out = tmp_path / "templates.jsonl"
    interrupted = interrupt_after_some_groups(mine_command(log, out), out, signum)
    assert interrupted.returncode == code, interrupted.stderr
    assert "Traceback" not in interrupted.stderr
    (line,) = interrupted.stderr.splitlines()
    assert line.startswith(f"thoughtbank: interrupted ({signum.name}): finished groups are kept")
    assert "--resume" in line and "templates.jsonl.journal" in line
    assert journaled_groups(out) >= 1


def test_a_log_whose_columns_all_differ_says_which_it_has_and_how_to_map_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "export.csv"
    log.write_text("prompt,model,answer,score\nWhat is 2+2?,m1,4,1\nWhat is 3+3?,m2,6,1\n")
    assert main(["mine", str(log), "--out", str(tmp_path / "t.jsonl"), "--no-merge"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["rows_rejected"] == 2
    assert "none of the 2 rows could be used" in err
    assert "has columns prompt, model, answer, score" in err
    assert "missing: task_name, query, llm, response, performance" in err
    assert "--columns task_name=YOUR_COLUMN,query=YOUR_COLUMN" in err


def test_a_run_without_templates_exits_non_zero_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(2))
    arguments = ["--deny-models", "model-a,model-b,model-c,model-d", "--no-merge"]
    assert main(["mine", str(log), "--out", str(tmp_path / "t.jsonl"), *arguments]) == 1
    assert "no templates: 2 of 2 groups had no response to distil" in capsys.readouterr().err


def test_a_directory_is_not_a_log_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mine", str(tmp_path), "--out", str(tmp_path / "t.jsonl")]) == 2
    assert f"{tmp_path} is a directory; pass the log files in it" in capsys.readouterr().err


def test_columns_must_name_schema_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(1))
    with pytest.raises(SystemExit) as refused:
        main(["mine", str(log), "--columns", "query=prompt,answer=response"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "unknown schema column(s) 'answer'" in err and "known: task_name, query" in err


@pytest.mark.slow
def test_no_progress_hides_the_model_loading_bar(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(2))
    command = [str(THOUGHTBANK), "mine", str(log), "--out", str(tmp_path / "t.jsonl")]
    done = subprocess.run(
        [*command, "--no-progress"], env=environment(), capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout)["templates"] >= 1
    assert "Loading weights" not in done.stderr and "it/s" not in done.stderr
