"""A second ecosystem: Node.js (@grpc/grpc-js + @grpc/proto-loader) calls Retrieve from the .proto.

The Node dependencies are installed into tests/node/node_modules (``npm ci``, from the committed
package-lock.json) the first time; the test skips where node or npm is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT

NODE_DIR = Path(__file__).resolve().parent
PROTO = REPO_ROOT / "protos" / "thoughtbank" / "v1" / "thought_templates.proto"


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the Node.js client check (install Node.js >= 18)")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return node


def test_node_client_retrieves_from_the_proto_alone(node: str, demo_server) -> None:
    run = subprocess.run(
        [
            node,
            "retrieve.js",
            str(PROTO),
            demo_server.address,
            "Lena has 30 stickers and gives 12 to her friend. How many stickers are left?",
            "2",
        ],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert [hit["task"] for hit in out["hits"]] == ["gsm8k", "gsm8k"]
    assert out["hits"][0]["score"] >= out["hits"][1]["score"] > 0
    assert all(hit["id"] and hit["source_models"] for hit in out["hits"])
    assert out["index_version"]
    assert out["empty_query"][0] == "INVALID_ARGUMENT" and "empty" in out["empty_query"][1]
