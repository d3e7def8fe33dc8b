"""``--llm openai:MODEL`` against a local OpenAI-compatible endpoint (as vLLM, NIM or Ollama
serve), reached through ``OPENAI_BASE_URL``: requests, token usage and a retried 429."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from mining_fakes import TEMPLATE_REPLY
from mining_logs import many_queries, write_jsonl

from thoughtbank.templates import MiningOptions, mine_templates, read_templates
from thoughtbank.templates.chat import CallPolicy, ChatDistiller, load_chat_model

pytest.importorskip("langchain_openai")


class FakeOpenAI(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``: a 429 for the first ``rate_limited`` requests, then a
    completion with the template reply and token usage."""

    rate_limited: ClassVar[int] = 0
    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        if len(type(self).requests) <= type(self).rate_limited:
            self._reply(429, {"error": {"message": "slow down", "type": "rate_limit"}})
            return
        self._reply(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": TEMPLATE_REPLY},
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            },
        )

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        """Quiet: the test asserts on ``requests`` instead."""


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeOpenAI]]:
    FakeOpenAI.requests = []
    FakeOpenAI.rate_limited = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    try:
        yield FakeOpenAI
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_mines_through_an_openai_compatible_endpoint(
    endpoint: type[FakeOpenAI], tmp_path: Path
) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(3))
    distiller = ChatDistiller(
        load_chat_model("openai:served-model", 10),
        "openai:served-model",
        CallPolicy(timeout_s=10, backoff_s=0.01),
    )
    out = tmp_path / "templates.jsonl"
    summary = mine_templates([log], out, distiller, MiningOptions(workers=2))
    assert (summary.templates, summary.llm_calls) == (3, 3)
    assert (summary.input_tokens, summary.output_tokens) == (300, 60)
    assert {t.distiller for t in read_templates(out)} == {"chat:openai:served-model"}
    request = endpoint.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer test-key"
    assert request["body"]["model"] == "served-model"
    assert [m["role"] for m in request["body"]["messages"]] == ["system", "user"]


def test_rate_limit_responses_are_retried(endpoint: type[FakeOpenAI], tmp_path: Path) -> None:
    endpoint.rate_limited = 2
    log = write_jsonl(tmp_path / "log.jsonl", many_queries(1))
    distiller = ChatDistiller(
        load_chat_model("openai:served-model", 10),
        policy=CallPolicy(timeout_s=10, retries=3, backoff_s=0.01),
    )
    summary = mine_templates([log], tmp_path / "t.jsonl", distiller)
    assert (summary.templates, summary.llm_calls, summary.failed) == (1, 3, 0)
    assert len(endpoint.requests) == 3
