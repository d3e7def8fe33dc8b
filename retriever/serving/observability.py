"""What the server reports about itself: Prometheus metrics and structured (JSON) logs."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServerMetrics:
    """The server's metrics, in a registry of their own (several servers may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._live_versions: dict[str, str] = {}
        self.requests = Counter(
            "thoughtbank_requests",
            "RPCs handled, by method, status code and namespace ('' when none was resolved)",
            ["rpc", "code", "namespace"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "thoughtbank_request_latency_seconds",
            "RPC latency, by method, status code and namespace",
            ["rpc", "code", "namespace"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "thoughtbank_requests_in_flight",
            "RPCs admitted and not yet ended (their answers sent), by method",
            ["rpc"],
            registry=self.registry,
        )
        self.unsent_bytes = Gauge(
            "thoughtbank_unsent_response_bytes",
            "answer bytes reserved or built and not yet sent to clients",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "thoughtbank_batch_size",
            "queries embedded and searched together",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.index_version = Gauge(
            "thoughtbank_index_version_info",
            "each namespace's live index version (value 1)",
            ["namespace", "version"],
            registry=self.registry,
        )
        self.index_size = Gauge(
            "thoughtbank_index_templates",
            "templates in each namespace's live index",
            ["namespace"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "thoughtbank_index_reloads",
            "index version loads, by namespace and outcome (ok or failed)",
            ["namespace", "outcome"],
            registry=self.registry,
        )

        self.outcomes = Counter(
            "thoughtbank_outcomes",
            "outcomes RecordOutcome(s) stored, by namespace and result (new, or repeated)",
            ["namespace", "result"],
            registry=self.registry,
        )
        self.retired_templates = Gauge(
            "thoughtbank_retired_templates",
            "templates not served because their outcomes or an operator retired them",
            ["namespace"],
            registry=self.registry,
        )

    def observe_outcomes(self, namespace: str, recorded: Sequence[bool]) -> None:
        self.outcomes.labels(namespace, "new").inc(sum(recorded))
        self.outcomes.labels(namespace, "repeated").inc(len(recorded) - sum(recorded))

    def observe_request(self, rpc: str, code: str, namespace: str, seconds: float) -> None:
        self.requests.labels(rpc, code, namespace).inc()
        self.latency.labels(rpc, code, namespace).observe(seconds)

    def set_index(self, namespace: str, version: str, size: int) -> None:
        """Report ``version`` as ``namespace``'s only live one."""
        self.forget_index(namespace)
        self.index_version.labels(namespace, version).set(1)
        self.index_size.labels(namespace).set(size)
        self._live_versions[namespace] = version

    def forget_index(self, namespace: str) -> None:
        """Drop the series of a namespace's live version (it is gone, or another replaces it)."""
        version = self._live_versions.pop(namespace, None)
        if version is not None:
            self.index_version.remove(namespace, version)
            self.index_size.remove(namespace)

    def serve_http(self, host: str, port: int) -> int:
        """Expose ``/metrics`` on ``host:port`` (0 picks a free port); return the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)


_STANDARD_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The ``extra=`` fields of a record (port, version...): what both formats must show."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_FIELDS}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...``: the JSON format's fields, for people."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(
            f"{k}={json.dumps(v, default=str)}" for k, v in extra_fields(record).items()
        )
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # fields before any traceback
        return f"{head} {fields}{newline}{rest}"


def configure_logging(log_format: str, level: str) -> None:
    """Log to stderr as JSON lines (``json``) or plain text (``text``)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("faiss").setLevel(logging.WARNING)
