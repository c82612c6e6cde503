"""Prometheus metrics of a real app on SQLite, scraped over HTTP from a running worker.

Also: the deploy/ alert rules (promtool check + unit tests) and the Grafana dashboard's
queries. promtool is required under CI=true; on a laptop without it those tests skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from jobglass.app import JobGlass
from jobglass.jobs import Retry
from jobglass.models import FINISHED
from jobglass.observe.metrics import DURATION_BUCKETS, MAX_KEYS_PER_JOB, mount_metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


class InventoryMismatch(Exception):
    """A custom error type: must show up as error_type="InventoryMismatch"."""


# -- helpers -----------------------------------------------------------------------------------


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        body: bytes = response.read()
        return body.decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by (name, labels)."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found[(name, frozenset(labels.items()))]


async def until(predicate: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[JobGlass]:
    app = JobGlass(database_url=f"sqlite:///{tmp_path}/t.db")

    @app.job(name="ok")
    async def ok(ctx: Any) -> str:
        await asyncio.sleep(0.03)
        ctx.log.add_outcome("synced", 7)
        ctx.log.add_outcome("skipped", 2)
        return "done"

    @app.job(name="flaky", retry=Retry(attempts=3, delay=0.01, jitter=0))
    def flaky(ctx: Any) -> str:  # a sync job: metrics must not care
        if ctx.attempt == 1:
            raise ValueError("first attempt fails")
        return "second attempt works"

    @app.job(name="broken", retry=Retry(attempts=1))
    async def broken(ctx: Any) -> None:
        raise InventoryMismatch("expected 3 got 2")

    async with app:
        yield app
    app.metrics.shutdown()


async def all_finished(app: JobGlass, ids: list[int]) -> bool:
    runs = [await app.get_run(i) for i in ids]
    return all(r.status in FINISHED for r in runs)


# -- the scrape ------------------------------------------------------------------------------------


async def test_worker_scrape_counts_success_retry_and_custom_error(app: JobGlass) -> None:
    runs = [
        await app.enqueue("ok"),
        await app.enqueue("flaky"),
        await app.enqueue("broken"),
    ]
    await app.enqueue("ok", delay=3600)  # delayed
    await app.enqueue("ok", queue="nobody-serves-this")  # waiting, ageing
    worker = app.worker(queues=["default"], concurrency=4)
    task = asyncio.create_task(worker.run())
    try:
        port = app.metrics.serve(0, "127.0.0.1")
        await until(lambda: all_finished(app, [r.id for r in runs]))
        await asyncio.sleep(0.3)  # the lag of the unserved queue grows past zero
        text = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
    finally:
        worker.stop()
        await task

    found = samples(text)
    # executions: one per attempt end
    assert value(found, "job_executions_total", job_name="ok", status="success") == 1
    assert value(found, "job_executions_total", job_name="ok", status="error") == 0
    assert value(found, "job_executions_total", job_name="flaky", status="retrying") == 1
    assert value(found, "job_executions_total", job_name="flaky", status="success") == 1
    assert value(found, "job_executions_total", job_name="flaky", status="error") == 0
    assert value(found, "job_executions_total", job_name="broken", status="error") == 1
    assert value(found, "job_executions_total", job_name="broken", status="success") == 0
    # errors by type, retries
    assert value(found, "job_errors_total", job_name="flaky", error_type="ValueError") == 1
    assert value(found, "job_errors_total", job_name="broken", error_type="InventoryMismatch") == 1
    assert (
        "job_errors_total",
        frozenset({("job_name", "ok"), ("error_type", "ValueError")}),
    ) not in found
    assert value(found, "job_retries_total", job_name="flaky") == 1
    assert value(found, "job_retries_total", job_name="ok") == 0
    assert value(found, "job_retries_total", job_name="broken") == 0
    # the histogram: one observation per attempt, cumulative buckets, ms to hours
    assert value(found, "job_duration_seconds_count", job_name="ok") == 1
    assert value(found, "job_duration_seconds_count", job_name="flaky") == 2
    assert value(found, "job_duration_seconds_count", job_name="broken") == 1
    assert value(found, "job_duration_seconds_sum", job_name="ok") >= 0.03
    assert value(found, "job_duration_seconds_bucket", job_name="ok", le="0.025") == 0
    assert value(found, "job_duration_seconds_bucket", job_name="ok", le="+Inf") == 1
    for job, count in (("ok", 1), ("flaky", 2), ("broken", 1)):
        buckets = [
            value(found, "job_duration_seconds_bucket", job_name=job, le=_le(b))
            for b in DURATION_BUCKETS
        ]
        assert buckets == sorted(buckets)
        assert value(found, "job_duration_seconds_bucket", job_name=job, le="14400.0") == count
    # outcome counters of the JobLogger
    assert value(found, "job_outcomes_total", job_name="ok", outcome="synced") == 7
    assert value(found, "job_outcomes_total", job_name="ok", outcome="skipped") == 2
    # database gauges
    assert value(found, "job_queue_depth", queue="default", state="delayed") == 1
    assert value(found, "job_queue_depth", queue="default", state="waiting") == 0
    assert value(found, "job_queue_depth", queue="nobody-serves-this", state="waiting") == 1
    assert value(found, "job_queue_lag_seconds", queue="nobody-serves-this") > 0
    assert value(found, "job_queue_lag_seconds", queue="default") == 0
    assert value(found, "job_workers_active") == 1

    checked = await asyncio.to_thread(
        subprocess.run,
        [promtool(), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _le(bucket: float) -> str:
    return str(float(bucket))


async def test_gauges_are_cached_between_scrapes(app: JobGlass) -> None:
    calls = 0
    original = app.queue_stats

    async def counting() -> dict[str, dict[str, Any]]:
        nonlocal calls
        calls += 1
        return await original()

    app.queue_stats = counting  # type: ignore[method-assign]
    await app.enqueue("ok")
    port = app.metrics.serve(0, "127.0.0.1")
    url = f"http://127.0.0.1:{port}/metrics"
    scrapes = await asyncio.gather(*(asyncio.to_thread(fetch, url) for _ in range(8)))
    assert calls == 1  # eight concurrent scrapes, one database read
    for text in scrapes:
        assert value(samples(text), "job_queue_depth", queue="default", state="waiting") == 1
    await app.enqueue("ok")
    stale = samples(await asyncio.to_thread(fetch, url))
    assert value(stale, "job_queue_depth", queue="default", state="waiting") == 1
    app.metrics.refresh_interval = 0.0
    fresh = samples(await asyncio.to_thread(fetch, url))
    assert value(fresh, "job_queue_depth", queue="default", state="waiting") == 2
    assert calls == 2


async def test_scrape_on_the_loop_never_blocks_it(app: JobGlass) -> None:
    """A synchronous scrape from inside the event loop serves the cache instead of waiting."""
    from prometheus_client import generate_latest

    await app.enqueue("ok")
    app.metrics.bind_loop()
    first = generate_latest(app.metrics.registry).decode()  # no snapshot yet: gauges empty
    assert "job_workers_active " not in first
    await asyncio.sleep(0.2)  # the refresh it scheduled completes
    second = samples(generate_latest(app.metrics.registry).decode())
    assert value(second, "job_queue_depth", queue="default", state="waiting") == 1


async def test_mount_metrics_on_fastapi(app: JobGlass) -> None:
    api = FastAPI()
    mount_metrics(api, app)
    await app.run_job("ok")
    await app.enqueue("ok")
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert value(found, "job_executions_total", job_name="ok", status="success") == 1
    assert value(found, "job_queue_depth", queue="default", state="waiting") == 1
    assert "/metrics" not in json.dumps(api.openapi())


async def test_misfires_and_separate_registries(app: JobGlass, tmp_path: Path) -> None:
    app.metrics.misfire("nightly-report")
    app.metrics.misfire("nightly-report", 2)
    other = JobGlass(database_url=f"sqlite:///{tmp_path}/other.db")
    assert other.metrics.registry is not app.metrics.registry
    assert app.metrics is app.metrics
    from prometheus_client import generate_latest

    found = samples(generate_latest(app.metrics.registry).decode())
    assert value(found, "scheduler_misfires_total", schedule="nightly-report") == 3
    assert not any(
        k[0] == "scheduler_misfires_total"
        for k in samples(generate_latest(other.metrics.registry).decode())
    )


async def test_listeners_are_the_only_door_and_failures_are_contained(app: JobGlass) -> None:
    seen: list[tuple[str, str]] = []

    def broken_listener(*_: Any) -> None:
        raise RuntimeError("listener bug")

    app.attempt_listeners.insert(0, broken_listener)
    app.attempt_listeners.append(lambda run, fin, log: seen.append((run.job_name, fin.status)))
    run = await app.run_job("ok")
    assert run.status == "SUCCESS"  # a broken listener does not break the run
    assert seen == [("ok", "SUCCESS")]
    assert app.metrics.sample("job_executions_total", job_name="ok", status="success") == 1

    app.attempt_listeners.clear()  # metrics off
    await app.run_job("ok")
    assert app.metrics.sample("job_executions_total", job_name="ok", status="success") == 1


async def test_a_worker_makes_the_metrics_before_its_first_run(app: JobGlass) -> None:
    assert app._metrics is None  # made on first use: importing jobglass does not need them
    worker = app.worker(queues=["nobody"], concurrency=1)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            if app._metrics is not None:
                break
            await asyncio.sleep(0.01)
        assert app._metrics is not None  # prepared at start, not by the first run's end
        assert worker.completed == 0
    finally:
        worker.stop()
        assert await task == 0


async def test_an_attempt_lost_with_its_worker_is_counted(app: JobGlass) -> None:
    from jobglass.stores.base import ClaimParams

    retried = await app.enqueue("flaky")  # 3 attempts: the lost one is retried
    failed = await app.enqueue("broken")  # 1 attempt: the lost one fails the run
    # a worker that claims both and dies at once: its leases run out after 0.2 s
    claimed = await app.store.claim_runs(ClaimParams("dead-worker", ["default"], 10, 0.2))
    assert sorted(r.id for r in claimed) == sorted([retried.id, failed.id])
    await asyncio.sleep(0.4)
    assert await app.worker(queues=["nobody"]).reclaim_expired() == 2
    m = app.metrics
    assert m.sample("job_executions_total", job_name="flaky", status="retrying") == 1
    assert m.sample("job_retries_total", job_name="flaky") == 1
    assert m.sample("job_executions_total", job_name="broken", status="error") == 1
    assert m.sample("job_errors_total", job_name="broken", error_type="LeaseExpired") == 1
    assert m.sample("job_errors_total", job_name="flaky", error_type="LeaseExpired") == 1


async def test_outcome_keys_are_bounded_per_job(app: JobGlass) -> None:
    @app.job(name="chatty")
    async def chatty(ctx: Any) -> None:
        for i in range(MAX_KEYS_PER_JOB + 10):
            ctx.log.add_outcome(f"key_{i}", 1)

    await app.run_job("chatty")
    from prometheus_client import generate_latest

    found = samples(generate_latest(app.metrics.registry).decode())
    keys = {
        dict(k[1])["outcome"]
        for k in found
        if k[0] == "job_outcomes_total" and dict(k[1]).get("job_name") == "chatty"
    }
    assert len(keys) == MAX_KEYS_PER_JOB  # 49 named keys and "other"
    assert value(found, "job_outcomes_total", job_name="chatty", outcome="other") == 11


# -- alert rules and dashboard ------------------------------------------------------------------


def test_alert_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(DEPLOY / "prometheus-alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 rules found" in result.stdout


def test_alert_rules_pass_promtool_unit_tests() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", "prometheus-alerts.test.yml"],
        cwd=DEPLOY,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_parse_and_use_our_metrics(tmp_path: Path) -> None:
    """Every dashboard query, with Grafana's variables filled in, is valid PromQL."""
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    text = "\n".join(exprs)
    for metric in (
        "job_executions_total",
        "job_duration_seconds_bucket",
        "job_errors_total",
        "job_queue_depth",
        "job_queue_lag_seconds",
        "job_workers_active",
        "job_retries_total",
        "job_outcomes_total",
        "scheduler_misfires_total",
    ):
        assert metric in text, metric
    assert "histogram_quantile(0.5," in text and "histogram_quantile(0.95," in text
    filled = [
        e.replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
        .replace("$job_name", ".*")
        .replace("$queue", ".*")
        for e in exprs
    ]
    rules = "groups:\n  - name: dashboard\n    rules:\n" + "".join(
        f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}\n"
        for i, e in enumerate(filled)
    )
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(rules)
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the CLI ---------------------------------------------------------------------------------------

WORKER_APP = """
from jobglass.app import JobGlass

app = JobGlass(database_url={url!r})


@app.job(name="ok")
async def ok(ctx):
    return "done"
"""


async def test_cli_worker_serves_metrics_port(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    (tmp_path / "cli_metrics_app.py").write_text(WORKER_APP.format(url=url))
    producer = JobGlass(database_url=url)
    producer.register(lambda ctx: None, name="ok")
    async with producer:
        run = await producer.enqueue("ok")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobglass", "worker", "cli_metrics_app:app",
        "--metrics-port", "0", "--metrics-addr", "127.0.0.1",
        cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "worker exited before serving metrics"
            if line.startswith("metrics: "):
                port = int(line.rsplit(":", 1)[1].split("/")[0])
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        for _ in range(200):
            found = samples(await asyncio.to_thread(fetch, metrics_url))
            key = ("job_executions_total", frozenset({("job_name", "ok"), ("status", "success")}))
            # the gauges are cached for 2 s: a scrape before the worker registered shows 0
            if found.get(key) == 1 and found.get(("job_workers_active", frozenset())) == 1:
                break
            await asyncio.sleep(0.1)
        assert value(found, "job_executions_total", job_name="ok", status="success") == 1
        assert value(found, "job_workers_active") == 1
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    async with producer:
        assert (await producer.get_run(run.id)).status == "SUCCESS"
