"""The outcome store: idempotent, validated, durable across kill -9, shared by processes."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from thoughtbank.index import current_version, load_index, prune, remove_templates
from thoughtbank.index.artifact import PRUNED_IDS_FILE
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.retriever.errors import InvalidRequestError
from thoughtbank.retriever.serving.engine import RetrievalEngine
from thoughtbank.schema import (
    MAX_OUTCOME_TEXT_CHARS,
    MAX_TEMPLATES_PER_OUTCOME,
    OutcomeError,
    OutcomeRecord,
)

WRITER = """
import sys
from pathlib import Path
from thoughtbank.index.outcomes import OutcomeStore
from thoughtbank.schema import OutcomeRecord
store = OutcomeStore(Path(sys.argv[1]))
prefix, batches = sys.argv[2], int(sys.argv[3])
for b in range(batches):
    ids = [f"{prefix}-{b}-{n}" for n in range(10)]
    store.record([OutcomeRecord(i, ("t1", "t2"), 0.5) for i in ids])
    print(" ".join(ids), flush=True)  # acknowledged only once record returned
"""


def _writer(index_dir: Path, prefix: str, batches: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(index_dir), prefix, str(batches)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_retried_outcome_is_recorded_once(tmp_path: Path) -> None:
    with OutcomeStore(tmp_path) as store:
        first = OutcomeRecord("o1", ("t1", "t2"), 0.8, query="q", baseline_score=0.5, task="gsm8k")
        assert store.record([first]) == [True]
        assert store.record([first, OutcomeRecord("o2", ("t1",), 0.2)]) == [False, True]
        assert store.count() == 2
    with OutcomeStore(tmp_path) as reopened:
        assert reopened.outcome_ids() == {"o1", "o2"}


@pytest.mark.parametrize(
    ("outcome", "field"),
    [
        (OutcomeRecord("", ("t",), 0.5), "outcome_id"),
        (OutcomeRecord("o", (), 0.5), "template_ids"),
        (OutcomeRecord("o", ("t",) * (MAX_TEMPLATES_PER_OUTCOME + 1), 0.5), "template_ids"),
        (OutcomeRecord("o", ("t", ""), 0.5), "template_ids"),
        (OutcomeRecord("o", ("t",), math.nan), "score"),
        (OutcomeRecord("o", ("t",), 1.5), "score"),
        (OutcomeRecord("o", ("t",), -0.1), "score"),
        (OutcomeRecord("o", ("t",), 0.5, baseline_score=math.inf), "baseline_score"),
        (OutcomeRecord("o", ("t",), 0.5, query="x" * (MAX_OUTCOME_TEXT_CHARS + 1)), "query"),
        (OutcomeRecord("o", ("t" * (MAX_OUTCOME_TEXT_CHARS + 1),), 0.5), "template_ids[0]"),
    ],
)
def test_an_invalid_outcome_names_its_field_and_stores_nothing(
    tmp_path: Path, outcome: OutcomeRecord, field: str
) -> None:
    with OutcomeStore(tmp_path) as store:
        with pytest.raises(OutcomeError, match=rf"^{field.replace('[', '.').replace(']', '.')}"):
            store.record([OutcomeRecord("fine", ("t",), 0.5), outcome])
        assert store.count() == 0


def test_template_outcomes_count_uses_scores_and_lift(tmp_path: Path) -> None:
    with OutcomeStore(tmp_path) as store:
        store.record(
            [
                OutcomeRecord("a", ("t1", "t2"), 1.0, baseline_score=0.5),
                OutcomeRecord("b", ("t1",), 0.5),
                OutcomeRecord(
                    "c", ("t1", "t1"), 0.0, baseline_score=0.25
                ),  # a repeated id counts once
            ]
        )
        by_id = {t.template_id: t for t in store.template_outcomes()}
    assert set(by_id) == {"t1", "t2"}
    assert (by_id["t1"].uses, by_id["t1"].uses_with_baseline) == (3, 2)
    assert by_id["t1"].mean_score == pytest.approx(0.5)
    assert by_id["t1"].mean_lift_vs_baseline == pytest.approx((0.5 - 0.25) / 2)
    assert (by_id["t2"].uses, by_id["t2"].mean_lift_vs_baseline) == (1, pytest.approx(0.5))


@pytest.mark.slow
def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    OutcomeStore(tmp_path).count()  # create the file and WAL mode before the race
    writers = [_writer(tmp_path, name, 30) for name in ("a", "b")]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    with OutcomeStore(tmp_path) as store:
        assert store.count() == 2 * 30 * 10


@pytest.mark.slow
def test_every_acknowledged_outcome_survives_kill_9(tmp_path: Path) -> None:
    writer = _writer(tmp_path, "k", 10_000)
    assert writer.stdout is not None
    acknowledged: set[str] = set()
    for line in writer.stdout:
        acknowledged.update(line.split())
        if len(acknowledged) >= 300:
            os.kill(writer.pid, signal.SIGKILL)
            break
    writer.wait(timeout=30)
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    with OutcomeStore(tmp_path) as store:
        stored = store.outcome_ids()
    assert acknowledged <= stored
    assert len(stored) % 10 == 0  # a batch is one commit: all of it or none


def test_outcomes_may_name_templates_of_older_and_pruned_versions(
    demo_index: Path, tmp_path: Path, embedder
) -> None:
    """A prompt built just before a swap names templates the live version no longer holds:
    its outcome is still taken, also after their version is pruned; a never-held id is not."""
    index_dir = tmp_path / "index"
    shutil.copytree(demo_index, index_dir)
    gone = next(iter(load_index(index_dir).templates.values())).id
    engine = RetrievalEngine.open(index_dir, embedder)
    remove_templates(index_dir, [gone])
    newer = engine.reloaded(index_dir, current_version(index_dir))
    assert gone not in {t.id for t in newer.index.templates.values()}
    assert newer.record_outcomes([OutcomeRecord("before-swap", (gone,), 1.0)]) == [True]
    assert prune(index_dir, keep=1).removed
    assert gone in (index_dir / PRUNED_IDS_FILE).read_text().split()
    pruned = RetrievalEngine.open(index_dir, embedder)
    assert pruned.record_outcomes([OutcomeRecord("after-prune", (gone,), 1.0)]) == [True]
    with pytest.raises(InvalidRequestError, match="'never-held' not in any index version"):
        pruned.record_outcomes([OutcomeRecord("unknown", ("never-held",), 1.0)])
