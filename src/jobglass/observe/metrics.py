"""Prometheus metrics: attempt counters and durations, outcomes, misfires, queue gauges.

One `JobMetrics` per app (`app.metrics`, created on first use), owning its own
`CollectorRegistry`: two apps in one process never share or clash. Attempts reach it
through `app.attempt_listeners` (the default list holds `metrics_listener(app)`), called
once per attempt after its end was written, so a fenced-off stale attempt is not counted.

Queue depth, lag and live workers come from the database, through a collector that
refreshes a cached snapshot at most every `refresh_interval` seconds, on the app's event
loop. A scrape from another thread (the `--metrics-port` server) waits for that refresh;
a scrape on the loop itself (`render()`) awaits it. Neither ever blocks the loop.

`prometheus_client` is imported when metrics are first used, not when jobglass is.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..models import RunStatus

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry, Counter
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

    from ..app import JobGlass
    from ..feedback import JobLogger
    from ..models import Run
    from ..stores.base import Finish

__all__ = [
    "DURATION_BUCKETS",
    "QUEUE_STATES",
    "JobMetrics",
    "metrics_listener",
    "mount_metrics",
    "start_metrics_server",
]

log = logging.getLogger("jobglass.metrics")

#: From 5 ms to 4 h: jobs span quick webhooks to nightly batches.
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
)  # fmt: skip
#: The live states of `job_queue_depth{state}` (finished counts are not a depth).
QUEUE_STATES = ("waiting", "delayed", "active", "retrying")
#: `job_executions_total{status}` per attempt end.
STATUS_LABELS = {
    RunStatus.SUCCESS: "success",
    RunStatus.FAILED: "error",
    RunStatus.RETRYING: "retrying",
    RunStatus.CANCELLED: "cancelled",
}
#: Label values per job for outcome keys (and error types), "other" included: beyond it,
#: new keys are folded into "other" so a job cannot blow up the series count.
MAX_KEYS_PER_JOB = 50
OTHER = "other"

AttemptListener = Callable[["Run", "Finish", "JobLogger | None"], None]


@dataclass(slots=True)
class _JobSeries:
    """One job's attempt figures as plain numbers: recording one is arithmetic under a lock
    (a `prometheus_client` counter's `inc` takes its own lock, a histogram's `observe` two:
    together 1.6 us of the 2.2 an attempt cost); `_AttemptCollector` makes the samples."""

    created: float
    status: dict[str, int]
    #: attempts per duration bucket (not cumulative), the last one for +Inf
    buckets: list[int]
    duration_sum: float = 0.0
    retries: int = 0
    #: error type or outcome key -> [value, created]
    errors: dict[str, list[float]] = field(default_factory=dict)
    outcomes: dict[str, list[float]] = field(default_factory=dict)


@dataclass(slots=True)
class _Snapshot:
    depth: dict[str, dict[str, int]]
    lag: dict[str, float]
    workers: int | None
    at: float


class JobMetrics:
    """The app's Prometheus metrics. Use `app.metrics`; `registry` is yours to expose."""

    def __init__(
        self,
        app: JobGlass | None = None,
        *,
        registry: CollectorRegistry | None = None,
        refresh_interval: float = 2.0,
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter

        self.app = app
        self.registry: CollectorRegistry = registry or CollectorRegistry()
        self.refresh_interval = refresh_interval
        reg = self.registry
        self._series: dict[str, _JobSeries] = {}
        self._lock = threading.Lock()
        reg.register(cast("Collector", _AttemptCollector(self)))
        self.misfires: Counter = Counter(
            "scheduler_misfires", "Schedule fire times missed.", ["schedule"], registry=reg
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._snapshot: _Snapshot | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._servers: list[Any] = []
        if app is not None:
            reg.register(cast("Collector", _DatabaseCollector(self)))

    # -- recording --------------------------------------------------------------------------

    def record_attempt(self, run: Run, finish: Finish, logger: JobLogger | None = None) -> None:
        """Count one attempt's end: status, duration, error type, retry, outcome counters."""
        status = STATUS_LABELS.get(finish.status)
        if status is None:
            return
        ms = finish.duration_ms
        if ms is None and logger is not None:
            ms = logger.elapsed_ms
        error_type = None
        if status in ("error", "retrying") and finish.error:
            error_type = str(finish.error.get("type") or "Exception")
            if error_type == "JobCancelled":  # shutdown hands the run back; not an error
                error_type = None
        outcome = logger.outcome() if logger is not None and logger.has_outcome() else None
        name = run.job_name
        lock = self._lock
        lock.acquire()  # (not `with`: half the cost, once per attempt)
        try:
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = _JobSeries(
                    time.time(),
                    dict.fromkeys(STATUS_LABELS.values(), 0),
                    [0] * (len(DURATION_BUCKETS) + 1),
                )
            series.status[status] += 1
            if ms is not None:
                seconds = ms / 1000.0
                series.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
                series.duration_sum += seconds
            if status == "retrying":
                series.retries += 1
            if error_type is not None:
                _bounded(series.errors, error_type)[0] += 1
            if outcome:
                for key, value in outcome.items():
                    if value > 0:
                        _bounded(series.outcomes, key)[0] += value
        finally:
            lock.release()

    def sample(self, name: str, **labels: str) -> float | None:
        """One sample's current value from this app's registry (None if it has none yet),
        e.g. `sample("job_executions_total", job_name="sync", status="success")`."""
        return self.registry.get_sample_value(name, labels)

    def misfire(self, schedule: str, count: int = 1) -> None:
        """For the scheduler: `count` fire times of `schedule` were missed."""
        if count > 0:
            self.misfires.labels(schedule=schedule).inc(count)

    def attempt_families(self) -> list[Metric]:
        """The attempt metrics' families, as they stand (for the registry's collector)."""
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
        from prometheus_client.samples import Sample

        executions = CounterMetricFamily(
            "job_executions", "Attempts ended, by status.", labels=["job_name", "status"]
        )
        duration = HistogramMetricFamily(
            "job_duration_seconds", "Attempt duration in seconds.", labels=["job_name"]
        )
        errors = CounterMetricFamily(
            "job_errors",
            "Failed attempts (retried or final), by exception type.",
            labels=["job_name", "error_type"],
        )
        retries = CounterMetricFamily(
            "job_retries", "Failed attempts that will be retried.", labels=["job_name"]
        )
        outcomes = CounterMetricFamily(
            "job_outcomes",
            "JobLogger outcome counters, added at the end of each attempt.",
            labels=["job_name", "outcome"],
        )
        bounds = [_le(bound) for bound in DURATION_BUCKETS] + ["+Inf"]
        with self._lock:  # one consistent view: a histogram's count equals its buckets'
            for name, series in self._series.items():
                created = series.created
                for status, count in series.status.items():
                    executions.add_metric([name, status], count, created=created)
                cumulative, running = [], 0
                for bound, count in zip(bounds, series.buckets, strict=True):
                    running += count
                    cumulative.append((bound, float(running)))
                duration.add_metric([name], cumulative, series.duration_sum)
                duration.samples.append(
                    Sample("job_duration_seconds_created", {"job_name": name}, created)
                )
                retries.add_metric([name], series.retries, created=created)
                for key, (value, since) in series.errors.items():
                    errors.add_metric([name, key], value, created=since)
                for key, (value, since) in series.outcomes.items():
                    outcomes.add_metric([name, key], value, created=since)
        return [executions, duration, errors, retries, outcomes]

    # -- exposition -------------------------------------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """The loop database gauges are read on (the app's); set by `serve()` and `render()`."""
        self._loop = loop or asyncio.get_running_loop()

    async def render(self) -> bytes:
        """The exposition text, after refreshing the database gauges (for async servers)."""
        self.bind_loop()
        await self.refresh()
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve `/metrics` over HTTP in a background thread; returns the bound port.

        Call it from the app's event loop (the worker does) so the database gauges can be read.
        """
        from prometheus_client import start_http_server

        with contextlib.suppress(RuntimeError):  # no running loop: no database gauges
            self.bind_loop()
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._servers.append(server)
        return int(server.server_address[1])

    def shutdown(self) -> None:
        """Stop the HTTP servers started by `serve()`."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    # -- database gauges ------------------------------------------------------------------------

    async def refresh(self, force: bool = False) -> None:
        """Re-read queue stats and workers if the snapshot is older than the interval.

        Concurrent callers share one read. Failures keep the previous snapshot.
        """
        snap = self._snapshot
        if not force and snap is not None and time.monotonic() - snap.at < self.refresh_interval:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._load())
        await asyncio.shield(self._refreshing)

    async def _load(self) -> None:
        app = self.app
        if app is None or app._store is None:  # closed apps are not reopened by a scrape
            return
        try:
            stats = await app.queue_stats()
            workers = await app.workers()
        except Exception:
            log.warning("metrics: reading queue stats failed", exc_info=True)
            return
        depth = {q: {s: int(v.get(s) or 0) for s in QUEUE_STATES} for q, v in stats.items()}
        lag = {q: float(v.get("oldestWaitingAgeSeconds") or 0.0) for q, v in stats.items()}
        self._snapshot = _Snapshot(depth, lag, len(workers), time.monotonic())

    def snapshot_for_scrape(self) -> _Snapshot | None:
        """Called by the collector: refresh on the app's loop unless we are on that loop."""
        loop = self._loop
        snap = self._snapshot
        fresh = snap is not None and time.monotonic() - snap.at < self.refresh_interval
        if fresh or loop is None or loop.is_closed() or not loop.is_running():
            return snap
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:  # a sync scrape on the loop: never block it, refresh for next time
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = loop.create_task(self._load())
            return snap
        try:
            asyncio.run_coroutine_threadsafe(self.refresh(), loop).result(timeout=5.0)
        except Exception:
            log.warning("metrics: queue stats refresh did not complete", exc_info=True)
        return self._snapshot


class _DatabaseCollector:
    """`job_queue_depth`, `job_queue_lag_seconds`, `job_workers_active` from the snapshot."""

    def __init__(self, metrics: JobMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return list(self._families(None))

    def collect(self) -> Iterator[Metric]:
        return self._families(self.metrics.snapshot_for_scrape())

    def _families(self, snap: _Snapshot | None) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily(
            "job_queue_depth", "Runs in a queue by live state.", labels=["queue", "state"]
        )
        lag = GaugeMetricFamily(
            "job_queue_lag_seconds", "Age of the oldest due, unclaimed run.", labels=["queue"]
        )
        workers = GaugeMetricFamily("job_workers_active", "Workers with a recent heartbeat.")
        if snap is not None:
            for queue, states in sorted(snap.depth.items()):
                for state, value in states.items():
                    depth.add_metric([queue, state], value)
            for queue, age in sorted(snap.lag.items()):
                lag.add_metric([queue], age)
            if snap.workers is not None:
                workers.add_metric([], snap.workers)
        yield depth
        yield lag
        if snap is not None and snap.workers is not None:
            yield workers


def _bounded(table: dict[str, list[float]], key: str) -> list[float]:
    """The [value, created] of `key`, folded into "other" once a job has its fill of keys."""
    entry = table.get(key)
    if entry is None:
        if len(table) >= MAX_KEYS_PER_JOB - 1:
            key = OTHER
        entry = table.get(key)
        if entry is None:
            entry = table[key] = [0.0, time.time()]
    return entry


def _le(bound: float) -> str:
    """A bucket bound as `prometheus_client` writes these ones (`repr` of the float)."""
    return repr(float(bound))


class _AttemptCollector:
    """`job_executions_total`, `job_duration_seconds`, `job_errors_total`,
    `job_retries_total` and `job_outcomes_total` from the recorded numbers."""

    def __init__(self, metrics: JobMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return self.metrics.attempt_families()

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics.attempt_families())


class _MetricsListener:
    """Counts each attempt into `app.metrics`; a worker calls `prepare()` when it starts, so
    the first runs do not pay for importing `prometheus_client` and making the metrics."""

    __slots__ = ("_record", "app")

    def __init__(self, app: JobGlass) -> None:
        self.app = app
        self._record: Callable[[Run, Finish, JobLogger | None], None] | None = None

    def __call__(self, run: Run, finish: Finish, logger: JobLogger | None) -> None:
        record = self._record
        if record is None:  # the app's metrics are made once, on first use
            record = self._record = self.app.metrics.record_attempt
        record(run, finish, logger)

    def prepare(self) -> None:
        self.app.metrics  # noqa: B018 - made on first use

    def __repr__(self) -> str:
        return "metrics_listener"


def metrics_listener(app: JobGlass) -> AttemptListener:
    """The default attempt listener: counts into `app.metrics`."""
    return _MetricsListener(app)


def start_metrics_server(app: JobGlass, port: int, addr: str = "0.0.0.0") -> int:
    """`jobglass worker --metrics-port`: serve the app's metrics; returns the bound port."""
    return app.metrics.serve(port, addr)


def mount_metrics(api: FastAPI, app: JobGlass, path: str = "/metrics") -> None:
    """Add `GET /metrics` (Prometheus text format) to a FastAPI app serving `app`."""
    from prometheus_client import CONTENT_TYPE_LATEST
    from starlette.responses import Response

    async def metrics_endpoint() -> Response:
        return Response(await app.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    api.add_api_route(path, metrics_endpoint, methods=["GET"], include_in_schema=False)
