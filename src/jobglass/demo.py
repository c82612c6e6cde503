"""`jobglass demo`: the Job Manager, a worker and the scheduler in one process, on SQLite.

The demo's jobs are the seeds' examples (`user-sync`, `match-scores`, `orphan-scan`, as in
`examples/jobs.py`), slowed down so their progress can be watched, plus a job that fails twice
and then succeeds, one that always fails, and a health check scheduled every minute. They ship
inside the package so `jobglass demo` works from any directory after `pip install`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .app import JobGlass
from .context import JobContext
from .errors import FatalError, TransientError
from .jobs import Retry
from .models import Run

DEMO_QUEUES = ("default", "reports")
DEFAULT_DB = Path(tempfile.gettempdir()) / ".jobglass-demo" / "demo.db"


# -- fake data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    id: int
    has_quiz_data: bool


def demo_users(count: int, seed: int = 7) -> list[DemoUser]:
    rng = random.Random(seed)
    return [DemoUser(i + 1, rng.random() > 0.03) for i in range(count)]


def demo_scores(user: DemoUser) -> list[float]:
    if not user.has_quiz_data:
        return []
    rng = random.Random(user.id)
    return [round(rng.random(), 3) for _ in range(50 - user.id % 7)]


async def _pause(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


# -- the jobs -------------------------------------------------------------------------------------


def register_demo_jobs(app: JobGlass) -> None:
    """The seeds' jobs with a `pause_ms` knob, and the demo's extras."""

    @app.job(name="user-sync", retry=Retry(attempts=3, backoff="exponential", delay=5))
    async def user_sync(
        ctx: JobContext, batch_size: int = 100, pause_ms: int = 40, failing: str = "13,42"
    ) -> dict[str, int]:
        """Sync users to the external directory (seed 001); `failing` user ids time out."""
        log = ctx.log
        bad = {int(x) for x in failing.split(",") if x.strip().isdigit()}
        log.set_stage("Initializing")
        log.info("Job started", {"batchSize": batch_size})
        log.set_stage("Loading users")
        users = demo_users(batch_size)
        await _pause(pause_ms * 5)
        log.set_total(len(users), "users")
        log.milestone(f"Found {len(users):,} users to sync")
        log.set_stage("Syncing users")
        synced = failed = 0
        for user in users:
            ctx.raise_if_cancelled()
            await _pause(pause_ms)
            if user.id in bad:
                failed += 1
                log.add_outcome("errors", 1)
                log.error(
                    f"Failed to sync user {user.id}",
                    {"userId": str(user.id), "error": "timeout talking to the directory"},
                )
            else:
                synced += 1
                log.add_outcome("synced", 1)
            log.increment_progress()
            if (synced + failed) % 10 == 0:
                log.info(
                    f"Progress: {synced + failed}/{len(users)}",
                    {"synced": synced, "failed": failed},
                )
        log.set_stage("Finalizing")
        log.milestone("Sync complete", {"total": len(users), "synced": synced, "failed": failed})
        return {"synced": synced, "failed": failed}

    @app.job(name="match-scores", timeout=3600)
    async def match_scores(
        ctx: JobContext, user_count: int = 5000, pause_ms: int = 24, algorithm_version: str = "v1"
    ) -> dict[str, Any]:
        """Compute match scores for every user (seed 002); ~2 minutes with the defaults."""
        log = ctx.log
        log.set_stage("Initializing", "Loading configuration")
        config = {"algorithmVersion": algorithm_version, "weights": {"quiz": 0.7, "activity": 0.3}}
        log.info("Configuration loaded", config)
        log.set_stage("Fetching users", "fetching from database")
        users = demo_users(user_count)
        await _pause(pause_ms * 40)
        log.set_total(len(users), "users")
        log.milestone(f"Loaded {len(users):,} users to process")
        log.set_stage("Scoring users")
        total = skipped = 0
        for i, user in enumerate(users):
            ctx.raise_if_cancelled()
            scores = demo_scores(user)
            if not scores:
                skipped += 1
                log.warning(f"No valid candidates for user {user.id}", {"userId": str(user.id)})
                log.add_outcome("skipped", 1)
            else:
                total += len(scores)
                log.add_outcome("updates", len(scores))
            log.increment_progress(1)
            if (i + 1) % 50 == 0:
                log.debug("Score cache flushed", {"entries": 50, "userId": str(user.id)})
            if (i + 1) % 100 == 0:
                avg = round(total / (i + 1), 1)
                log.info(
                    f"Batch {i + 1:,}/{len(users):,} complete",
                    {"avgScoresPerUser": avg, "skippedCount": skipped},
                )
            if (i + 1) % 2500 == 0 and i + 1 < len(users):
                log.milestone(f"Phase {(i + 1) // 2500} complete: {i + 1:,} users scored")
            if pause_ms and (i + 1) % 10 == 0:
                await _pause(pause_ms * 10)
        log.set_stage("Finalizing", "saving results")
        await _pause(pause_ms * 20)
        log.milestone(
            "All users processed",
            {"totalUsers": len(users), "totalScores": total, "totalSkipped": skipped},
        )
        return {"users": len(users), "scores": total, "skipped": skipped}

    @app.job(name="orphan-scan", queue="reports")
    def orphan_scan(ctx: JobContext, files: int = 3000, pause_ms: int = 3) -> int:
        """Scan for orphaned files; the total is unknown up front (seed 002, pattern 2)."""
        log = ctx.log
        log.set_stage("Scanning for orphaned files")
        for found in range(1, files + 1):
            if ctx.wait_cancelled(pause_ms / 1000) if pause_ms else ctx.cancelled:
                ctx.raise_if_cancelled()
            log.increment_progress()
            log.add_outcome("deletes", 1)
            if found % 250 == 0:
                log.info(f"Found {found:,} orphaned files so far")
        log.milestone(f"Cleanup complete: {files:,} orphaned files deleted")
        return files

    @app.job(
        name="warehouse-export",
        queue="reports",
        retry=Retry(attempts=4, backoff="fixed", delay=4, jitter=0),
    )
    async def warehouse_export(
        ctx: JobContext, rows: int = 400, fail_attempts: int = 2, pause_ms: int = 10
    ) -> dict[str, int]:
        """Export to the warehouse; the connection drops in the first attempts, then holds."""
        log = ctx.log
        log.set_stage("Exporting rows")
        log.set_total(rows, "rows")
        for i in range(rows):
            ctx.raise_if_cancelled()
            await _pause(pause_ms)
            log.increment_progress()
            log.add_outcome("exported", 1)
            if ctx.attempt <= fail_attempts and i == rows // 2:
                log.warning("Warehouse connection unstable", {"attempt": ctx.attempt})
                raise TransientError(f"warehouse connection reset after {i:,} rows")
        log.milestone(f"Exported {rows:,} rows on attempt {ctx.attempt}")
        return {"rows": rows, "attempt": ctx.attempt}

    @app.job(name="ledger-reconcile", queue="reports")
    async def ledger_reconcile(ctx: JobContext, month: str = "2024-01") -> None:
        """Reconcile a month's ledger; the demo data never balances (press Retry to see)."""
        log = ctx.log
        log.set_stage("Loading ledger", month)
        await _pause(800)
        log.set_total(3, "accounts")
        log.set_stage("Reconciling accounts")
        for account in ("cash", "receivables", "payables"):
            await _pause(400)
            log.info(f"Account {account} checked")
            log.increment_progress()
        raise FatalError(f"ledger {month} is off by 12.40 EUR: checksum mismatch")

    @app.job(name="health-check")
    async def health_check(ctx: JobContext) -> dict[str, int]:
        """Probe the fake services (scheduled every minute in the demo)."""
        log = ctx.log
        services = ("database", "cache", "directory", "mailer", "storage")
        log.set_stage("Probing services")
        log.set_total(len(services), "services")
        for name in services:
            await _pause(150)
            log.info(f"{name} is healthy", {"latencyMs": 20 + len(name) * 3})
            log.add_outcome("healthy", 1)
            log.increment_progress()
        return {"healthy": len(services)}


def build_demo_app(database_url: str) -> JobGlass:
    app = JobGlass(database_url=database_url)
    register_demo_jobs(app)
    schedule = getattr(app, "schedule", None)
    if callable(schedule):
        # a jobglass.toml in the current directory belongs to another app, not to the demo
        app.schedule_registry.config = []
        schedule("health-check", cron="0 * * * * ?", description="Every minute, on the minute")
    return app


async def enqueue_demo_runs(app: JobGlass) -> list[tuple[Run, str]]:
    """A few runs so the page is alive at once."""
    plan: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
        ("match-scores", {}, {}, "5,000 users, about 2 minutes"),
        ("user-sync", {"batch_size": 120}, {"tenant_id": "acme"}, "two users fail to sync"),
        ("warehouse-export", {}, {}, "fails twice, retried, then succeeds"),
        ("orphan-scan", {}, {}, "unknown total"),
        ("ledger-reconcile", {}, {}, "fails for good: try Retry"),
        ("user-sync", {"batch_size": 40}, {"delay": 45, "tenant_id": "globex"}, "starts in 45 s"),
    ]
    out = []
    for job, params, options, note in plan:
        run = await app.enqueue(job, params, trigger="MANUAL", **options)
        out.append((run, note))
    return out


# -- running it ------------------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


@contextlib.contextmanager
def _no_signal_capture() -> Iterator[None]:
    yield


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


async def run_demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    db: str | os.PathLike[str] | None = None,
    *,
    reset: bool = False,
    out: TextIO | None = None,
    ready: asyncio.Event | None = None,
) -> int:
    """Serve the page, work and schedule until SIGINT/SIGTERM (or `stop_demo`)."""
    import uvicorn

    from .web.api import create_api
    from .web.auth import AuthConfig, make_dev_token, new_dev_secret

    stream = out or sys.stdout
    path = Path(db) if db else DEFAULT_DB
    path.parent.mkdir(parents=True, exist_ok=True)
    if reset:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{path}{suffix}")
    sock = bind(host, port)
    port = sock.getsockname()[1]
    app = build_demo_app(f"sqlite:///{path}")
    await app.open()
    secret = new_dev_secret()
    token = make_dev_token(secret, subject="demo-admin")
    api = create_api(app, auth=AuthConfig(jwt_secret=secret))
    config = uvicorn.Config(
        api, log_level="warning", lifespan="on", ws_per_message_deflate=False,
        proxy_headers=False, server_header=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    server.capture_signals = _no_signal_capture  # type: ignore[method-assign]
    worker = app.worker(queues=list(DEMO_QUEUES), concurrency=6, grace=3.0)
    scheduler: Any = None
    try:
        from .scheduler import Scheduler

        scheduler = Scheduler(app)
    except ImportError:  # pragma: no cover - a build without the scheduler
        pass
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    presses = 0

    def on_signal() -> None:
        nonlocal presses
        presses += 1
        stop.set()
        if presses > 1:
            worker.stop()  # second Ctrl-C: stop waiting for in-flight runs
            server.force_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    tasks = {
        "server": asyncio.create_task(server.serve(sockets=[sock]), name="demo-server"),
        "worker": asyncio.create_task(worker.run(), name="demo-worker"),
    }
    if scheduler is not None:
        tasks["scheduler"] = asyncio.create_task(scheduler.run(), name="demo-scheduler")
    try:
        while not server.started:
            if tasks["server"].done():
                raise RuntimeError("the web server did not start")
            await asyncio.sleep(0.02)
        runs = await enqueue_demo_runs(app)
        url = _url(host, port)
        print(banner(url, token, path, runs, scheduler is not None), file=stream, flush=True)
        if ready is not None:
            ready.set()
        done = asyncio.ensure_future(stop.wait())
        await asyncio.wait([done, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
    finally:
        print("\njobglass demo: stopping…", file=stream, flush=True)
        worker.stop()
        if scheduler is not None:
            scheduler.stop()
        server.should_exit = True
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await app.close()
        sock.close()
    print("jobglass demo: stopped.", file=stream, flush=True)
    return 0


def banner(url: str, token: str, path: Path, runs: list[tuple[Run, str]], scheduled: bool) -> str:
    lines = [
        "",
        "jobglass demo: the Job Manager, a worker and the scheduler, on SQLite",
        f"  database   {path}",
        f"  open       {url}?token={token}",
        f"  API        {url}api/admin  (docs: {url}api/docs)",
        f"  token      {token}",
        "             a dev admin token, valid 12 hours, for this demo run only",
        "  enqueued:",
    ]
    for run, note in runs:
        lines.append(f"    #{run.id:<5} {run.job_name:<17} {note}")
    if scheduled:
        lines.append("  scheduled: health-check, every minute")
    lines += ["", "Press Ctrl-C to stop.", ""]
    return "\n".join(lines)
