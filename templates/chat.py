"""LLM distiller through any langchain-core ``BaseChatModel``.

The model is asked for FusionFactory's three parts (core task summary, 1-3 reasoning steps,
answer format) plus an optional pitfalls note, as a JSON object. Replies are parsed leniently
(JSON in prose or a code fence, wrapped in a list or with texts nested in lists and objects,
steps as a list or as numbered lines, or the rendered "Task: / Reasoning steps: / Answer
format:" layout) because models drift from the format; a reply of the wrong shape is an
``OutputParserException``, retried like any unparseable reply.
Calls run under a ``CallPolicy``: a per-call timeout, retries with exponential backoff on
transient errors (timeouts, connection and rate-limit errors, unparseable replies) and an
optional rate limit shared by all workers.

``load_chat_model`` turns ``--llm`` specs into models: ``openai:MODEL`` (langchain-openai, which
reads ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``, so vLLM, NIM and Ollama's OpenAI endpoint work)
and ``python:package.module:factory`` (any callable returning a ``BaseChatModel``).
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import JsonOutputParser
from langchain_core.rate_limiters import BaseRateLimiter, InMemoryRateLimiter
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from thoughtbank.templates.distill import Distillation, DistillRequest, LLMUsage
from thoughtbank.templates.schema import LogRecord, TemplateFields

MAX_STEPS = 3
MAX_RESPONSE_CHARS = 2000
SYSTEM_PROMPT = """\
You distil reusable thought templates from worked answers. Given a query and the best responses \
to it, write a template that would help solve other queries of the same kind.
Reply with only a JSON object with these keys:
"task_summary": one sentence on the kind of task (not this query's specifics),
"reasoning_steps": a list of 1 to 3 short, general reasoning steps,
"answer_format": how the final answer must be stated,
"pitfalls": one sentence on what to avoid, learnt from the failed responses, or "" if none given.
Never state the query's answer, and never copy long phrases of the query."""
_RENDERED_LAYOUT = re.compile(
    r"task(?:\s+summary)?:\s*(?P<summary>.+?)\s*reasoning steps:\s*(?P<steps>.+?)\s*"
    r"answer format:\s*(?P<format>.+?)\s*(?:pitfalls:\s*(?P<pitfalls>.*))?$",
    re.IGNORECASE | re.DOTALL,
)
_STEP_NUMBER = re.compile(r"^\s*(?:step\s*)?\d+[.):]\s*|^\s*[-*•]\s*", re.IGNORECASE)


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying: generic ones plus the OpenAI client's when it is installed."""
    errors: tuple[type[BaseException], ...] = (
        TimeoutError,
        ConnectionError,
        OutputParserException,
    )
    try:
        import openai
    except ImportError:
        return errors
    return (
        *errors,
        openai.APITimeoutError,
        openai.APIConnectionError,
        openai.RateLimitError,
        openai.InternalServerError,
    )


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """How each LLM call is run. ``requests_per_second=None`` means no rate limit.

    Calls run on a pool of ``call_threads`` threads so that a timed-out call can be abandoned;
    it keeps its thread until the model returns, so the pool is larger than the job's workers.
    """

    timeout_s: float | None = 120.0
    retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    requests_per_second: float | None = None
    call_threads: int = 64


def _text(value: Any) -> str:
    """A reply's field as text. Small models nest texts in lists or objects (``{"step": 1,
    "text": "..."}``): their strings are joined; numbers, booleans and null are no text."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        return " ".join(text for text in map(_text, value) if text)
    return ""


def _steps(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping):  # {"1": "...", "2": "..."}
        value = list(value.values())
    if isinstance(value, str):
        lines = value.splitlines()
    elif isinstance(value, list):
        lines = [_text(step) for step in value]
    else:  # a number or null: no steps
        lines = []
    steps = [_STEP_NUMBER.sub("", line).strip() for line in lines]
    return tuple(step for step in steps if step)[:MAX_STEPS]


def _distillation(summary: Any, steps: Any, answer_format: Any, pitfalls: Any) -> Distillation:
    fields = TemplateFields(_text(summary), _steps(steps), _text(answer_format))
    if not (fields.task_summary and fields.reasoning_steps and fields.answer_format):
        raise OutputParserException(f"template reply lacks a part: {fields}")
    return Distillation(fields, _text(pitfalls))


def _from_json(data: Mapping[str, Any]) -> Distillation:
    keys = {str(k).lower().replace(" ", "_"): v for k, v in data.items()}
    return _distillation(
        keys.get("task_summary", keys.get("summary")),
        keys.get("reasoning_steps", keys.get("steps")),
        keys.get("answer_format", keys.get("format")),
        keys.get("pitfalls"),
    )


def parse_template_reply(text: str) -> Distillation:
    """The template in a model's reply; ``OutputParserException`` when there is none."""
    try:
        data = JsonOutputParser().parse(text)
    except OutputParserException:
        data = None
    if isinstance(data, list) and data:  # the object wrapped in a list
        data = data[0]
    if isinstance(data, Mapping):
        return _from_json(data)
    layout = _RENDERED_LAYOUT.search(text)
    if layout is None:
        raise OutputParserException(f"no template in the reply: {text[:200]!r}")
    return _distillation(layout["summary"], layout["steps"], layout["format"], layout["pitfalls"])


def _quoted(responses: tuple[LogRecord, ...]) -> str:
    return "\n\n".join(
        f"[{i}] ({r.llm}, performance {r.performance:g})\n{r.response[:MAX_RESPONSE_CHARS]}"
        for i, r in enumerate(responses, 1)
    )


def build_messages(request: DistillRequest) -> list[BaseMessage]:
    """The system prompt and one user message with the query, responses and any feedback."""
    parts = [
        f"Task: {request.task}",
        f"Query:\n{request.query}",
        f"Best responses:\n{_quoted(request.responses)}",
    ]
    if request.failed:
        parts.append(f"Failed responses (for pitfalls):\n{_quoted(request.failed)}")
    if request.avoid:
        leaked = "; ".join(leak.describe() for leak in request.avoid)
        parts.append(f"Your previous template leaked {leaked}. Write it again without them.")
    return [SystemMessage(SYSTEM_PROMPT), HumanMessage("\n\n".join(parts))]


def _reply_text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(
        block if isinstance(block, str) else str(block.get("text", "")) for block in message.content
    )


def chat_distiller_name(label: str) -> str:
    """The distiller name a job's journal and templates record for the chat model ``label``."""
    return f"chat:{label}"


class ChatDistiller:
    """Distils with a chat model; thread-safe, so one instance serves every worker.

    ``rate_limiter`` replaces the in-process limiter of ``policy.requests_per_second`` (the Ray
    engine passes one shared by the whole cluster)."""

    version = "1"

    def __init__(
        self,
        model: BaseChatModel,
        label: str = "",
        policy: CallPolicy = CallPolicy(),
        rate_limiter: BaseRateLimiter | None = None,
    ) -> None:
        self.model = model
        self.policy = policy
        self.name = chat_distiller_name(label or type(model).__name__)
        self._limiter = rate_limiter or (
            InMemoryRateLimiter(
                requests_per_second=policy.requests_per_second, check_every_n_seconds=0.01
            )
            if policy.requests_per_second
            else None
        )
        self._lock = threading.Lock()
        self._usage = LLMUsage()
        self._calls = ThreadPoolExecutor(policy.call_threads, thread_name_prefix="llm-call")
        self._retrying = Retrying(
            retry=retry_if_exception_type(_transient_errors()),
            stop=stop_after_attempt(policy.retries + 1),
            wait=wait_exponential(multiplier=policy.backoff_s, max=policy.max_backoff_s)
            + wait_random(0, policy.backoff_s),
            reraise=True,
        )

    def distill(self, request: DistillRequest) -> Distillation:
        # A copy per call, as tenacity's own decorator does: the copy holds this call's state.
        return self._retrying.copy()(self._call_and_parse, build_messages(request))

    def usage(self) -> LLMUsage:
        with self._lock:
            return self._usage

    def _call_and_parse(self, messages: list[BaseMessage]) -> Distillation:
        reply = self._call(messages)
        return parse_template_reply(_reply_text(reply))

    def _call(self, messages: list[BaseMessage]) -> BaseMessage:
        """One model call under the rate limit and timeout, counted with its token usage."""
        if self._limiter is not None:
            self._limiter.acquire()
        with self._lock:
            self._usage = replace(self._usage, calls=self._usage.calls + 1)
        reply = self._invoke_with_timeout(messages)
        tokens = reply.usage_metadata if isinstance(reply, AIMessage) else None
        if tokens:
            with self._lock:
                self._usage = replace(
                    self._usage,
                    input_tokens=(self._usage.input_tokens or 0) + tokens["input_tokens"],
                    output_tokens=(self._usage.output_tokens or 0) + tokens["output_tokens"],
                )
        return reply

    def _invoke_with_timeout(self, messages: list[BaseMessage]) -> BaseMessage:
        """``model.invoke`` bounded by ``timeout_s``: the call runs on a pool thread, which is
        abandoned (not killed: Python cannot) when it overruns; the attempt then fails with
        ``TimeoutError`` and is retried."""
        if self.policy.timeout_s is None:
            return self.model.invoke(messages)
        future = self._calls.submit(self.model.invoke, messages)
        try:
            return future.result(timeout=self.policy.timeout_s)
        except FutureTimeout:
            if future.done():  # the model's own TimeoutError (the same class since 3.11)
                raise
            future.cancel()
            raise TimeoutError(f"LLM call took over {self.policy.timeout_s:g} s") from None


def _openai_model(model_name: str, timeout_s: float | None) -> BaseChatModel:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise RuntimeError(
            "--llm openai:MODEL needs langchain-openai: pip install '.[openai]'"
        ) from exc
    # Retries are the CallPolicy's, so the client's own are off.
    return ChatOpenAI(model=model_name, timeout=timeout_s, max_retries=0)


def _python_model(target: str) -> BaseChatModel:
    module_name, _, factory_name = target.partition(":")
    if not module_name or not factory_name:
        raise ValueError(f"expected python:package.module:factory, got python:{target}")
    factory = getattr(importlib.import_module(module_name), factory_name, None)
    if not callable(factory):
        raise ValueError(f"python:{target}: {module_name} has no callable {factory_name}")
    model = factory()
    if not isinstance(model, BaseChatModel):
        raise ValueError(f"python:{target} returned {type(model).__name__}, not a BaseChatModel")
    return model


def load_chat_model(spec: str, timeout_s: float | None = None) -> BaseChatModel:
    """The chat model named by an ``--llm`` spec (``openai:MODEL`` or ``python:MOD:FACTORY``)."""
    provider, _, target = spec.partition(":")
    if provider == "openai" and target:
        return _openai_model(target, timeout_s)
    if provider == "python" and target:
        return _python_model(target)
    raise ValueError(f"--llm must be openai:MODEL or python:package.module:factory, got {spec!r}")
