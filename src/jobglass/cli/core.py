"""Core commands: run, runs, show, enqueue, cancel, retry, worker, workers, stats, db."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..models import LogLine, Run, RunStatus
from ..process_gc import DEFAULT_THRESHOLD, tune_gc
from ..process_threads import (
    DEFAULT_SWITCH_INTERVAL,
    switch_interval_for,
    tune_switch_interval,
)
from .common import load_app, parse_params, serve_logging

LEVEL_STYLE = {
    "debug": "dim",
    "info": "",
    "milestone": "bold cyan",
    "warning": "yellow",
    "error": "bold red",
}
STATUS_STYLE = {
    "SUCCESS": "green",
    "FAILED": "red",
    "RUNNING": "cyan",
    "RETRYING": "yellow",
    "QUEUED": "white",
    "CANCELLED": "magenta",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a job now, in this process, and watch it live")
    p.add_argument("app", metavar="MODULE:APP")
    p.add_argument("job", metavar="JOB")
    p.add_argument(
        "--param",
        "-p",
        action="append",
        metavar="KEY=VALUE",
        help="a job parameter (JSON values allowed); repeatable",
    )
    p.add_argument("--debug", action="store_true", help="show debug log lines too")
    p.add_argument("--quiet", "-q", action="store_true", help="no live log lines")
    p.add_argument("--json", action="store_true", help="print the final run as JSON")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("enqueue", help="queue a run for the workers")
    p.add_argument("app", metavar="MODULE:APP")
    p.add_argument("job", metavar="JOB")
    p.add_argument("--param", "-p", action="append", metavar="KEY=VALUE")
    p.add_argument("--queue")
    p.add_argument("--priority", type=int)
    p.add_argument("--delay", type=float, help="seconds from now")
    p.add_argument("--run-at", help="ISO-8601 time with zone")
    p.add_argument("--job-id", help="dedupe key: a live run with this id is returned instead")
    p.add_argument("--tenant-id")
    p.add_argument("--user-id")
    p.add_argument("--correlation-id")
    p.set_defaults(func=cmd_enqueue)

    p = sub.add_parser("runs", help="list recent runs")
    _app_option(p)
    p.add_argument("--status", help="comma-separated statuses")
    p.add_argument("--job")
    p.add_argument("--queue")
    p.add_argument("--tenant")
    p.add_argument("--correlation-id")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", help="a run's whole story: status, progress, outcome, logs")
    p.add_argument("run_id", metavar="RUN_ID")
    _app_option(p)
    p.add_argument("--level", help="lowest log level shown (default info)", default="info")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    for name, helptext, fn in (
        ("cancel", "cancel a queued or running run", cmd_cancel),
        ("retry", "queue a failed or cancelled run again", cmd_retry),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("run_id", metavar="RUN_ID")
        _app_option(p)
        p.set_defaults(func=fn)

    p = sub.add_parser("worker", help="claim and run queued jobs until SIGTERM/SIGINT")
    p.add_argument("app", metavar="MODULE:APP")
    p.add_argument("--queues", default="default", help="comma-separated (default: default)")
    p.add_argument("--concurrency", "-c", type=int)
    p.add_argument("--grace", type=float, help="seconds in-flight runs get on shutdown")
    p.add_argument(
        "--with-scheduler",
        action="store_true",
        help="also fire due schedules in this process (safe with any number of them)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics at http://ADDR:PORT/metrics (0: a free port)",
    )
    p.add_argument(
        "--metrics-addr",
        default="0.0.0.0",
        metavar="ADDR",
        help="address for --metrics-port (default: 0.0.0.0)",
    )
    p.add_argument(
        "--gc-threshold",
        type=_gc_threshold,
        default=DEFAULT_THRESHOLD,
        metavar="N",
        help=(
            "collect the young generation every N net allocations, after freezing the"
            f" startup objects (default {DEFAULT_THRESHOLD:,}; 0: Python's own settings)"
        ),
    )
    p.add_argument(
        "--switch-interval",
        type=_switch_interval,
        default=None,
        metavar="SECONDS",
        help=(
            "hand the GIL to a waiting thread (the SQLite store's writer) after this long"
            f" (default on SQLite {DEFAULT_SWITCH_INTERVAL}, else Python's own 0.005;"
            " 0: Python's own)"
        ),
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("workers", help="live workers and their heartbeats")
    _app_option(p)
    p.set_defaults(func=cmd_workers)

    p = sub.add_parser("stats", help="per-queue counts and the oldest waiting run's age")
    _app_option(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("db", help="database schema")
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbsub.add_parser("upgrade", help="apply pending migrations (also done at start-up)")
    _app_option(up)
    up.set_defaults(func=cmd_db_upgrade)


def _app_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--app",
        metavar="MODULE:APP",
        help="app to load (default: a bare app on JOBGLASS_DATABASE_URL)",
    )


# -- run: live in the terminal -------------------------------------------------------------------


def _log_text(line: LogLine) -> Text:
    text = Text()
    text.append(f"[{line.level.upper()}] ", style=LEVEL_STYLE.get(line.level, ""))
    text.append(line.message, style=LEVEL_STYLE.get(line.level, "") if line.level != "info" else "")
    if line.context:
        text.append(" " + json.dumps(line.context, default=str), style="dim")
    return text


async def cmd_run(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    params = parse_params(args.param)
    console = Console(stderr=False, highlight=False)
    show_debug = args.debug
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("[dim]{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task_id = progress.add_task("Starting", total=None, rate="")

    def echo(line: LogLine) -> None:
        if args.quiet or (line.level == "debug" and not show_debug):
            return
        progress.console.print(_log_text(line))

    async with app:
        sub = app.events.subscribe(maxsize=10_000)
        run_id: list[str] = []

        async def follow() -> None:
            while True:
                event = await sub.get()
                if event.get("type") == "run" and not run_id:
                    run_id.append(event["runId"])
                if event.get("type") != "feedback" or (run_id and event["runId"] != run_id[0]):
                    continue
                elapsed = progress.tasks[0].elapsed or 0.0
                current = event["progressCurrent"]
                rate = f"{current / elapsed:,.0f}/s" if elapsed > 0 and current else ""
                progress.update(
                    task_id,
                    description=event["progressMessage"] or event["stage"] or "Running",
                    completed=current,
                    total=event["progressTotal"],
                    rate=rate,
                )

        follower = asyncio.create_task(follow())
        try:
            with progress:
                run = await app.run_job(args.job, params, echo=echo)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            sub.close()
        _print_outcome(console, run)
        if args.json:
            print(json.dumps(run.to_json(), indent=2))
    return 0 if run.status == RunStatus.SUCCESS else 1


def _print_outcome(console: Console, run: Run) -> None:
    style = STATUS_STYLE.get(str(run.status), "")
    console.print(
        Text.assemble(
            ("Status: ", "bold"),
            (str(run.status), style),
            f"   Run {run.id}   attempt {run.attempt}/{run.max_attempts}",
        )
    )
    if run.progress_message:
        pct = run.progress_percent
        console.print(
            f"Progress: {run.progress_message}" + (f" - {pct}%" if pct is not None else "")
        )
    if run.outcome:
        console.print("Outcome:")
        for key, value in run.outcome.items():
            console.print(f"  - {key}: {value:,}")
    if run.summary:
        console.print(Text(run.summary, style="bold"))
    if run.error and run.status != RunStatus.SUCCESS:
        console.print(
            Text(f"Error: {run.error.get('type')}: {run.error.get('message')}", style="red")
        )


# -- queue commands ---------------------------------------------------------------------


async def cmd_enqueue(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    async with app:
        run = await app.enqueue(
            args.job,
            parse_params(args.param),
            queue=args.queue,
            priority=args.priority,
            delay=args.delay,
            run_at=args.run_at,
            job_id=args.job_id,
            tenant_id=args.tenant_id,
            user_id=args.user_id,
            correlation_id=args.correlation_id,
        )
    print(
        json.dumps(
            {
                "id": str(run.id),
                "status": str(run.status),
                "queue": run.queue,
                "correlationId": run.correlation_id,
            }
        )
    )
    return 0


async def cmd_runs(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    status = [s.strip().upper() for s in args.status.split(",")] if args.status else []
    async with app:
        runs = await app.list_runs(
            status=status,
            job_name=args.job,
            queue=args.queue,
            tenant_id=args.tenant,
            correlation_id=args.correlation_id,
            limit=args.limit,
        )
    if args.json:
        print(json.dumps([r.to_json() for r in runs], indent=2))
        return 0
    table = Table(
        "ID",
        "Job",
        "Queue",
        "Status",
        "Stage / progress",
        "Attempt",
        "Created",
        "Duration",
        box=None,
    )
    for r in runs:
        pct = r.progress_percent
        progress = (r.progress_message or r.stage or "") + (f" {pct}%" if pct is not None else "")
        table.add_row(
            str(r.id),
            r.job_name,
            r.queue,
            Text(str(r.status), style=STATUS_STYLE.get(str(r.status), "")),
            Text(progress),
            f"{r.attempt}/{r.max_attempts}",
            r.created_at.strftime("%Y-%m-%d %H:%M:%S") if r.created_at else "",
            f"{r.duration_ms / 1000:.2f}s" if r.duration_ms is not None else "",
        )
    Console().print(table)
    return 0


async def cmd_show(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    async with app:
        run = await app.get_run(args.run_id)
        logs = await app.get_logs(run.id, level=args.level, limit=args.limit)
    if args.json:
        print(json.dumps({"run": run.to_json(), "logs": [x.to_json() for x in logs]}, indent=2))
        return 0
    console = Console(highlight=False)
    console.print(Text(f"Run {run.id} · {run.job_name} · queue {run.queue}", style="bold"))
    console.print(
        f"Trigger {run.trigger} · scope {run.scope} · correlation {run.correlation_id}"
        + (f" · tenant {run.tenant_id}" if run.tenant_id else "")
    )
    console.print(f"Params: {json.dumps(run.params)}")
    _print_outcome(console, run)
    for err in run.errors:
        console.print(
            Text(
                f"Attempt {err.get('attempt')}: {err.get('type')}: {err.get('message')}",
                style="red",
            )
        )
    console.print(Text("Logs:", style="bold"))
    for line in logs:
        console.print(Text.assemble(f"  {line.created_at:%H:%M:%S} ", _log_text(line)))
    return 0


async def _control(args: argparse.Namespace, action: str) -> int:
    app = load_app(args.app)
    async with app:
        run = await (app.cancel(args.run_id) if action == "cancel" else app.retry(args.run_id))
    state = "cancel requested" if run.cancel_requested else str(run.status)
    print(f"run {run.id}: {state}")
    return 0


async def cmd_cancel(args: argparse.Namespace) -> int:
    return await _control(args, "cancel")


async def cmd_retry(args: argparse.Namespace) -> int:
    return await _control(args, "retry")


async def cmd_worker(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    serve_logging(app, args.verbose)
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    async with app:
        tune_gc(args.gc_threshold)
        tune_switch_interval(switch_interval_for(app.store, args.switch_interval))
        worker = app.worker(
            queues=queues,
            concurrency=args.concurrency,
            grace=args.grace,
            with_scheduler=args.with_scheduler,
        )
        worker.install_signal_handlers()
        print(
            f"jobglass worker {worker.id}: queues={','.join(queues)} "
            f"concurrency={worker.concurrency}",
            file=sys.stderr,
            flush=True,
        )
        if args.metrics_port is not None:
            from ..observe.metrics import start_metrics_server

            port = start_metrics_server(app, args.metrics_port, args.metrics_addr)
            print(
                f"metrics: http://{args.metrics_addr}:{port}/metrics", file=sys.stderr, flush=True
            )
        try:
            code: int = await worker.run()
        finally:
            if args.metrics_port is not None:
                app.metrics.shutdown()
    return code


def _gc_threshold(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 keeps Python's settings), got {value}")
    return value


def _switch_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0 or value > 1:
        raise argparse.ArgumentTypeError(
            f"must be from 0 to 1 second (0 keeps Python's setting), got {text}"
        )
    return value


async def cmd_workers(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    async with app:
        workers = await app.workers()
    table = Table(
        "Worker", "Host", "PID", "Queues", "Running", "Concurrency", "Heartbeat", box=None
    )
    for w in workers:
        table.add_row(
            w.id,
            w.hostname,
            str(w.pid),
            ",".join(w.queues),
            str(w.running),
            str(w.concurrency),
            w.heartbeat_at.strftime("%H:%M:%S") if w.heartbeat_at else "",
        )
    Console().print(table if workers else "no live workers")
    return 0


async def cmd_stats(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    async with app:
        stats = await app.queue_stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    cols = ("waiting", "delayed", "active", "retrying", "completed", "failed", "cancelled")
    table = Table("Queue", *(c.title() for c in cols), "Oldest waiting", box=None)
    for queue, s in stats.items():
        age = s.get("oldestWaitingAgeSeconds")
        table.add_row(queue, *(f"{s[c]:,}" for c in cols), "" if age is None else f"{age:.1f}s")
    Console().print(table if stats else "no runs yet")
    return 0


async def cmd_db_upgrade(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    async with app:
        version = await app.store.schema_version()
    print(f"database schema at version {version}")
    return 0
