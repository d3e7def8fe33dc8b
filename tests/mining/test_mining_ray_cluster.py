"""``--engine ray --ray-address`` against a real cluster in separate processes.

Each test starts its own head (``ray start --head --block``, token authentication on, as Ray
defaults to), runs ``thoughtbank`` as a subprocess against it and stops the cluster it
started. Faults: a worker killed with -9 mid-run, the driver killed with -9 and resumed, the
whole cluster killed mid-run.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np
import pytest
from mining_logs import many_queries, row, template_set, write_jsonl

from thoughtbank.templates import DistillerSpec, MiningOptions, mine_templates
from thoughtbank.templates.journal import journal_path

pytest.importorskip("ray", reason="the ray extra is not installed")

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
THOUGHTBANK, RAY = BIN / "thoughtbank", BIN / "ray"
SLOW_FAKE = "python:mining_fakes:pid_recording_model"
CHAT = ["--distiller", "chat", "--llm", SLOW_FAKE, "--workers", "4", "--no-merge", "--no-progress"]


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    """What the head, its workers and the driver share: the fakes, a token, no hub access."""
    pids = tmp_path / "pids"
    pids.mkdir()
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "THOUGHTBANK_TEST_PID_DIR": str(pids),
    }


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@contextmanager
def ray_head(environment: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """A one-node cluster of 2 CPUs in its own process group, stopped (all of it) afterwards."""
    port = free_port()
    command = [str(RAY), "start", "--head", "--port", str(port), "--num-cpus", "2"]
    command += ["--include-dashboard=false", "--object-store-memory", str(100 * 2**20), "--block"]
    with log.open("w") as output:
        head = subprocess.Popen(
            command,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert head.poll() is None, f"ray start failed: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the Ray head did not come up within 60 s"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", head
    finally:
        _stop_group(head)


def _stop_group(head: subprocess.Popen) -> None:
    for signum, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(head.pid, signum)
        except ProcessLookupError:
            break
        try:
            head.wait(wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


def mine(log: Path, out: Path, environment: dict[str, str], *extra: str) -> subprocess.Popen:
    command = [str(THOUGHTBANK), "mine", str(log), "--out", str(out), *CHAT, *extra]
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen, timeout_s: float = 240) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout_s)
    return process.returncode, stdout, stderr


def journaled(out: Path) -> list[dict]:
    path = journal_path(out)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()[1:] if line.endswith("}")]


def wait_for_groups(out: Path, groups: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while len(journaled(out)) < groups:
        assert process.poll() is None, f"the job ended early: {process.communicate()}"
        assert time.monotonic() < deadline, f"fewer than {groups} groups within 120 s"
        time.sleep(0.05)


def local_reference(log: Path, out: Path, environment: dict[str, str]) -> set[str]:
    """The local engine's templates for ``log``, mined in this process."""
    os.environ["THOUGHTBANK_TEST_PID_DIR"] = environment["THOUGHTBANK_TEST_PID_DIR"]
    mine_templates([log], out, DistillerSpec(SLOW_FAKE).build(), MiningOptions(workers=4))
    return template_set(out)


def test_mine_and_index_build_on_a_joined_cluster_match_local(
    tmp_path: Path, environment: dict[str, str]
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", [*many_queries(40), "{torn", row(performance=7)])
    expected = local_reference(log, tmp_path / "local" / "t.jsonl", environment)
    with ray_head(environment, tmp_path / "head.log") as (address, _):
        on_ray = tmp_path / "ray" / "t.jsonl"
        on_cluster = ["--engine", "ray", "--ray-address", address]
        code, stdout, stderr = finish(mine(log, on_ray, environment, *on_cluster))
        assert code == 0, stderr
        index_dirs = {engine: tmp_path / f"index-{engine}" for engine in ("local", "ray")}
        for engine, index_dir in index_dirs.items():
            flags = on_cluster if engine == "ray" else []
            subprocess.run(
                [str(THOUGHTBANK), "index", "build", str(on_ray), "--out", str(index_dir), *flags],
                env=environment,
                check=True,
                capture_output=True,
            )
    assert template_set(on_ray) == expected and len(expected) == 40
    assert (
        on_ray.with_name("t.jsonl.rejects").read_text()
        == (tmp_path / "local" / "t.jsonl.rejects").read_text()
    )
    summary = json.loads(stdout)
    assert summary["templates"] == 40 and sum(summary["groups_per_actor"].values()) == 40
    assert_same_version(*index_dirs.values())


def assert_same_version(local_dir: Path, ray_dir: Path) -> None:
    """Same ids and texts, vectors within the probe tolerance, manifest apart from timings."""
    local_version, ray_version = (next((d / "versions").iterdir()) for d in (local_dir, ray_dir))
    assert (local_version / "templates.jsonl").read_text() == (
        ray_version / "templates.jsonl"
    ).read_text()
    cosines = np.sum(
        np.load(local_version / "embeddings.npy") * np.load(ray_version / "embeddings.npy"), axis=1
    )
    assert cosines.min() > 0.999
    manifests = [
        json.loads((v / "manifest.json").read_text()) for v in (local_version, ray_version)
    ]
    for manifest in manifests:
        for timing in ("created_at", "version", "files"):
            manifest.pop(timing, None)
    assert manifests[0] == manifests[1]


def test_a_worker_killed_mid_run_is_replaced_and_the_output_is_unchanged(
    tmp_path: Path, environment: dict[str, str]
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(160))
    expected = local_reference(log, tmp_path / "local" / "t.jsonl", environment)
    for pid_file in Path(environment["THOUGHTBANK_TEST_PID_DIR"]).iterdir():
        pid_file.unlink()
    out = tmp_path / "ray" / "t.jsonl"
    with ray_head(environment, tmp_path / "head.log") as (address, _):
        job = mine(log, out, environment, "--engine", "ray", "--ray-address", address)
        wait_for_groups(out, 20, job)
        victim = int(next(Path(environment["THOUGHTBANK_TEST_PID_DIR"]).iterdir()).name)
        os.kill(victim, signal.SIGKILL)
        code, stdout, stderr = finish(job)
    assert code == 0, stderr
    assert template_set(out) == expected
    groups = [entry["group"] for entry in journaled(out)]
    assert len(groups) == len(set(groups)) == 160
    # The surviving actor and the victim's replacement both finished groups.
    others = [a for a in json.loads(stdout)["groups_per_actor"] if not a.endswith(f":{victim}")]
    assert len(others) >= 2


def test_driver_killed_then_resumed_gives_the_whole_output_once(
    tmp_path: Path, environment: dict[str, str]
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(120))
    expected = local_reference(log, tmp_path / "local" / "t.jsonl", environment)
    out = tmp_path / "ray" / "t.jsonl"
    with ray_head(environment, tmp_path / "head.log") as (address, _):
        on_cluster = ["--engine", "ray", "--ray-address", address]
        job = mine(log, out, environment, *on_cluster)
        wait_for_groups(out, 10, job)
        job.send_signal(signal.SIGKILL)
        job.wait()
        finished_before = len(journaled(out))
        assert 10 <= finished_before < 120
        code, stdout, stderr = finish(mine(log, out, environment, *on_cluster, "--resume"))
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["groups_resumed"] >= finished_before
    assert summary["llm_calls"] >= 120 - summary["groups_resumed"]
    assert template_set(out) == expected
    groups = [entry["group"] for entry in journaled(out)]
    assert len(set(groups)) == 120 and len(groups) == 120


def test_the_cluster_going_away_is_a_clear_error_and_local_resume_finishes(
    tmp_path: Path, environment: dict[str, str]
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(400))
    expected = local_reference(log, tmp_path / "local" / "t.jsonl", environment)
    out = tmp_path / "ray" / "t.jsonl"
    with ray_head(environment, tmp_path / "head.log") as (address, head):
        job = mine(log, out, environment, "--engine", "ray", "--ray-address", address)
        wait_for_groups(out, 10, job)
        os.killpg(head.pid, signal.SIGKILL)
        code, _, stderr = finish(job, timeout_s=120)
    assert code == 1
    assert f"the Ray cluster at {address} went away mid-run" in stderr
    assert "--resume" in stderr
    kept = len(journaled(out))
    assert 10 <= kept < 400
    code, stdout, stderr = finish(mine(log, out, environment, "--resume"))
    assert code == 0, stderr
    assert json.loads(stdout)["groups_resumed"] == kept
    assert template_set(out) == expected


def test_without_an_address_a_local_instance_runs_the_job(
    tmp_path: Path, environment: dict[str, str]
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(12))
    out = tmp_path / "t.jsonl"
    code, stdout, stderr = finish(mine(log, out, environment, "--engine", "ray"))
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["templates"] == 12 and sum(summary["groups_per_actor"].values()) == 12
    assert template_set(out) == local_reference(log, tmp_path / "local" / "t.jsonl", environment)
