"""Prometheus metrics (HTTP traffic, jobs by state, predictions per model version, shadow
comparisons) and structured JSON logging.

Each app gets its own CollectorRegistry so several apps (tests, benchmarks) can live in one
process. Job counts are read from the database at scrape time, so they are right whichever
process (API, worker) changed them. Per-model series are labelled by model and version: a
request's route learns which version answered from `note_served` (serving.serve calls it),
and past MAX_MODEL_SERIES distinct (model, version) pairs new ones share one label, so
user-chosen names cannot blow up cardinality.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db import Database
from service.models import JobStatus, TrainingJob

log = logging.getLogger(__name__)

# Requests that matched no route share one label, so scanners cannot blow up cardinality.
UNMATCHED_ROUTE = "<unmatched>"
#: Distinct (model, version) label pairs per app; later ones are counted as OTHER.
MAX_MODEL_SERIES = 500
OTHER = "<other>"
#: The versions served during the current request: a list the middleware creates and
#: serving.serve appends to (a shared list, so it is seen across copied contexts).
_served: ContextVar[list[tuple[str, str]] | None] = ContextVar("nns_served", default=None)


def note_served(model: str, version: int | None) -> None:
    """Record that the current request was answered by `version` of `model` (None: a job's
    checkpoint), for the per-model metrics."""
    seen = _served.get()
    if seen is not None:
        seen.append((model, "checkpoint" if version is None else str(version)))


class JobsCollector(Collector):
    """`nns_jobs{state=...}`: how many training jobs are in each state right now."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def describe(self) -> Iterator[Metric]:
        # Without describe(), registering would call collect() and query the database.
        yield GaugeMetricFamily("nns_jobs", "Training jobs by state", labels=["state"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("nns_jobs", "Training jobs by state", labels=["state"])
        try:
            with self.database.session() as session:
                rows = session.execute(
                    select(TrainingJob.status, func.count()).group_by(TrainingJob.status)
                ).all()
        except Exception as exc:  # a scrape must not fail because the database is down
            log.warning("cannot count jobs for /metrics: %s", exc)
            return
        counts = {str(status): int(count) for status, count in rows}
        for state in JobStatus:
            family.add_metric([state.value], counts.get(state.value, 0))
        yield family


class Metrics:
    """The metric objects of one app."""

    def __init__(self, database: Database) -> None:
        #: What /metrics exposes. With PROMETHEUS_MULTIPROC_DIR set (`serve --workers N`),
        #: every process writes its samples there and /metrics adds up all the processes'
        #: files, so the metric objects below go to a private registry instead.
        self.registry = CollectorRegistry()
        own = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            own = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry)
        self.requests = Counter(
            "nns_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "nns_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=own,
        )
        self.model_requests = Counter(
            "nns_model_requests",
            "Requests answered per model version and route template",
            ["model", "version", "route"],
            registry=own,
        )
        self.model_latency = Histogram(
            "nns_model_request_duration_seconds",
            "Latency until the response is sent, per model version and route template",
            ["model", "version", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=own,
        )
        shadow = ["model", "version", "shadow_version"]
        self.shadow_labels = Counter(
            "nns_shadow_labels",
            "Instances whose shadow label agrees or disagrees with the answered label",
            [*shadow, "outcome"],
            registry=own,
        )
        self.shadow_difference = Histogram(
            "nns_shadow_abs_difference",
            "Per shadowed request: mean absolute difference of the outputs (probabilities or "
            "values) of the shadow and the answering version",
            shadow,
            buckets=(0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=own,
        )
        self.shadow_errors = Counter(
            "nns_shadow_errors",
            "Shadow runs that failed or could not be compared (never seen by the client)",
            shadow,
            registry=own,
        )
        #: Each series' labelled children, kept once looked up: `labels()` validates and
        #: locks on every call, a measurable part of a prediction's cost.
        self._http_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._model_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._model_pairs: set[tuple[str, str]] = set()
        self.registry.register(JobsCollector(database))

    def http_series(self, method: str, route: str, status: str) -> tuple[Any, Any]:
        """The request counter and latency histogram of one (method, route, status)."""
        key = (method, route, status)
        series = self._http_series.get(key)
        if series is None:
            series = self.requests.labels(*key), self.latency.labels(method, route)
            self._http_series[key] = series
        return series

    def model_series(self, model: str, version: str, route: str) -> tuple[Any, Any]:
        """The request counter and latency histogram of one model version on one route."""
        labels = (*self.model_labels(model, version), route)  # bounded: see model_labels
        series = self._model_series.get(labels)
        if series is None:
            series = self.model_requests.labels(*labels), self.model_latency.labels(*labels)
            self._model_series[labels] = series
        return series

    def model_labels(self, model: str, version: str) -> tuple[str, str]:
        """(model, version) as labels, or OTHER twice once MAX_MODEL_SERIES pairs exist."""
        pair = (model, version)
        if pair in self._model_pairs:
            return pair
        if len(self._model_pairs) >= MAX_MODEL_SERIES:
            return OTHER, OTHER
        self._model_pairs.add(pair)
        return pair


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (e.g. /v1/jobs/{job_id})."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        # Set when the last body chunk is sent: work after it (a shadow run) is not latency.
        sent: float | None = None
        served: list[tuple[str, str]] = []
        token = _served.set(served)

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                sent = time.perf_counter()

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            _served.reset(token)
            elapsed = (sent or time.perf_counter()) - started
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            method = str(scope.get("method", ""))
            count, latency = self.metrics.http_series(method, route, str(status))
            count.inc()
            latency.observe(elapsed)
            for model, version in dict.fromkeys(served):
                count, latency = self.metrics.model_series(model, version, route)
                count.inc()
                latency.observe(elapsed)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: easy to ship, grep and parse."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger (uvicorn's too) through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
