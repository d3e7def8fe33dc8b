"""``pip install thoughtbank`` without extras gives a working client against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wheel_support import fresh_venv, run

ENGINE_MODULES = ("torch", "sentence_transformers", "faiss", "sklearn", "pyarrow", "rank_bm25")

CLIENT_CALL = """
import importlib.util, json, sys
from thoughtbank.retriever import ThoughtbankClient
from thoughtbank.retriever.langchain import ThoughtTemplateRetriever

with ThoughtbankClient(sys.argv[1], timeout=30) as client:
    result = client.retrieve("How many apples are left?", k=2)
    documents = ThoughtTemplateRetriever(client=client, k=1).invoke("What is 7 * 8?")
print(json.dumps({
    "hits": len(result.hits),
    "version": result.index_version,
    "documents": len(documents),
    "engine": [m for m in sys.argv[2:] if importlib.util.find_spec(m) is not None],
}))
"""


@pytest.mark.slow
def test_client_without_extras_against_a_server(
    tmp_path: Path, built_wheel: Path, demo_server
) -> None:
    python = fresh_venv(tmp_path / "venv")
    installed = run(
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        built_wheel,
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr

    called = run(python, "-c", CLIENT_CALL, demo_server.address, *ENGINE_MODULES, cwd=tmp_path)
    assert called.returncode == 0, called.stderr
    answer = json.loads(called.stdout)
    assert answer["hits"] == 2 and answer["version"] and answer["documents"] == 1
    assert answer["engine"] == []

    thoughtbank = tmp_path / "venv" / "bin" / "thoughtbank"
    query = run(
        thoughtbank,
        "query",
        "What is 12 * 7?",
        "--server",
        demo_server.address,
        "--json",
        cwd=tmp_path,
    )
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout)["hits"]

    doctor = run(thoughtbank, "doctor", "--server", demo_server.address, "--json", cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stderr
    statuses = {check["name"]: check["status"] for check in json.loads(doctor.stdout)}
    assert statuses == {
        "model cache": "SKIP",
        "backend": "SKIP",
        f"server {demo_server.address}": "OK",
    }
    completion = run(thoughtbank, "completion", "bash", cwd=tmp_path)
    assert completion.returncode == 0 and "doctor" in completion.stdout, completion.stderr

    mine = run(thoughtbank, "mine", "logs.jsonl", "--out", "templates.jsonl", cwd=tmp_path)
    assert mine.returncode == 2
    assert "'.[cpu]'" in mine.stderr and "'.[gpu]'" in mine.stderr
