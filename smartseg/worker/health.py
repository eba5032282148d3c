"""The worker seen from outside: Prometheus metrics and a small `/healthz` + `/metrics` server.

Metrics live in a dedicated `CollectorRegistry` (one per worker, never the process-global one),
so several workers in one test process do not collide. They are per replica, as Prometheus
expects: a scraper sums runs across replicas.

The server is a threaded `http.server` on `worker.health_host:health_port` (port 0 picks a free
port; `HealthServer.port` says which). `/healthz` answers 200 or 503 with a small JSON body that
the worker computes (see `Worker.health`); `/metrics` is the Prometheus text format.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter as Tally
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from smartseg.logs import redact

__all__ = ["HealthServer", "WorkerMetrics"]

log = logging.getLogger("smartseg.worker.health")

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]

_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class WorkerMetrics:
    """Counters, gauges and histograms of one worker, fed from its jobs' run rows."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "smartseg_runs",
            "Job runs by outcome (ok, failed, interrupted; abandoned: its worker died, counted "
            "by the replica that took over).",
            ["job", "status"],
            registry=r,
        )  # fmt: skip
        self.skipped = Counter(
            "smartseg_runs_skipped",
            "Firings this replica did not run: held (another replica runs the job), fired (the "
            "firing already ran), locked (another replica is taking it), error.",
            ["job", "reason"],
            registry=r,
        )
        self.seconds = Histogram(
            "smartseg_run_seconds", "How long job runs took.", ["job"], buckets=_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.step_seconds = Histogram(
            "smartseg_step_seconds", "How long each step took.", ["step"], buckets=_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.last_run = Gauge(
            "smartseg_last_run_timestamp_seconds", "When a job last finished (Unix time).",
            ["job", "status"], registry=r,
        )  # fmt: skip
        self.records_pulled = Gauge(
            "smartseg_records_pulled", "Records read per source in its latest pull.", ["source"],
            registry=r,
        )  # fmt: skip
        self.segment_members = Gauge(
            "smartseg_segment_members", "Members per segment after the latest evaluation.",
            ["segment"], registry=r,
        )  # fmt: skip
        self.api_calls = Counter(
            "smartseg_api_calls", "API calls per target (sources read, CRMs written).", ["target"],
            registry=r,
        )  # fmt: skip
        self.failures = Counter(
            "smartseg_failures",
            "Failures per target: streams that failed to pull, records or tasks not written.",
            ["target"],
            registry=r,
        )

    def job_abandoned(self, job: str, runs: int) -> None:
        """Runs of `job` a dead worker left unfinished, settled by this replica."""
        self.runs.labels(job, "abandoned").inc(runs)

    def job_finished(self, job: str, status: str, seconds: float, finished: float) -> None:
        self.runs.labels(job, status).inc()
        self.seconds.labels(job).observe(seconds)
        self.last_run.labels(job, status).set(finished)

    def job_skipped(self, job: str, reason: str) -> None:
        self.skipped.labels(job, reason).inc()

    def step_run(self, step: str, seconds: float, counts: Mapping[str, Any],
                 api_calls: Mapping[str, Any]) -> None:  # fmt: skip
        """Record what one step's run row says (`counts`, `api_calls` as stored)."""
        self.step_seconds.labels(step).observe(seconds)
        for target, calls in api_calls.items():
            if isinstance(calls, int) and calls > 0:
                self.api_calls.labels(target).inc(calls)
        if step == "pull":
            self._pull(counts)
        elif step == "evaluate":
            self._evaluate(counts)
        elif step == "sync":
            self._sync(counts)

    def _pull(self, counts: Mapping[str, Any]) -> None:
        records: Tally[str] = Tally()
        for key, stream in (counts.get("streams") or {}).items():
            source = key.split(".", 1)[0]
            records[source] += int(stream.get("records", 0))
            if stream.get("error"):
                self.failures.labels(source).inc()
        for source, n in records.items():
            self.records_pulled.labels(source).set(n)

    def _evaluate(self, counts: Mapping[str, Any]) -> None:
        if not counts.get("recorded", True):
            return
        for segment, sizes in (counts.get("segments") or {}).items():
            members = sizes[0] if isinstance(sizes, list) else sizes.get("members", 0)
            self.segment_members.labels(segment).set(members)

    def _sync(self, counts: Mapping[str, Any]) -> None:
        failed = Tally(str(f.get("target", "unknown")) for f in counts.get("failures") or [])
        for target, n in failed.items():
            self.failures.labels(target).inc(n)


class HealthServer:
    """`/healthz` and `/metrics` over HTTP on a daemon thread."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, health: HealthCheck
    ) -> None:
        handler = _handler(registry, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="smartseg-health", daemon=True
        )

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the one picked when 0 was asked for)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(registry: CollectorRegistry, health: HealthCheck) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "smartseg"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                try:
                    ok, body = health()
                except Exception as exc:  # the check itself broke: that is unhealthy too
                    log.warning("health check failed", exc_info=True)
                    error = redact(f"{type(exc).__name__}: {exc}")
                    ok, body = False, {"status": "error", "error": error}
                payload = json.dumps(body, default=str).encode()
                self._send(200 if ok else 503, "application/json", payload)
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /healthz, /metrics\n")

        def _send(self, code: int, content_type: str, payload: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("health %s - %s", self.address_string(), format % args)

    return Handler
