"""Schedule commands: `scheduler`, `schedules [pause|resume|trigger]`, `cron`, and the
`--with-scheduler` option of `worker`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from ..cron import CronError, CronSchedule, next_fire_times
from .common import CLIError, load_app, serve_logging

if TYPE_CHECKING:
    from ..scheduler import Schedule

    Sub = argparse._SubParsersAction[argparse.ArgumentParser]

STATUS_STYLE = {
    "SUCCESS": "green",
    "FAILED": "red",
    "RUNNING": "cyan",
    "RETRYING": "yellow",
    "QUEUED": "white",
    "CANCELLED": "magenta",
}


def register(sub: Sub) -> None:
    p = sub.add_parser(
        "scheduler",
        help="fire due schedules until SIGTERM/SIGINT (any number may run: each fire time"
        " fires once)",
    )
    p.add_argument("app", metavar="MODULE:APP")
    p.add_argument(
        "--misfire-threshold",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how late a fire may be and still count as on time (default 60)",
    )
    p.set_defaults(func=cmd_scheduler)

    p = sub.add_parser("schedules", help="list schedules; pause, resume or trigger one")
    p.add_argument("--app", metavar="MODULE:APP", help="app to load (default: a bare app)")
    p.add_argument("--next", type=int, default=0, metavar="N", help="show the next N fire times")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_schedules)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    for name, text in (
        ("pause", "stop firing until resumed"),
        ("resume", "fire again, from the next fire time after now"),
        ("trigger", "run the schedule's job once now (works from the stored schedule alone)"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("name", metavar="NAME")
        a.add_argument("--app", metavar="MODULE:APP", default=argparse.SUPPRESS)
        a.set_defaults(func=cmd_schedule_action, action=name)

    p = sub.add_parser("cron", help="the next fire times of a cron expression")
    p.add_argument("expression", metavar="EXPR", help="e.g. '0 0 8 ? * MON' or '*/5 * * * *'")
    p.add_argument("--tz", default="UTC", metavar="ZONE", help="IANA time zone (default UTC)")
    p.add_argument(
        "--after",
        metavar="ISO",
        help="start after this time (default now); without a UTC offset (Z, +02:00) it is a"
        " wall-clock time in --tz",
    )
    p.add_argument("-n", type=int, default=5, metavar="N", help="how many (default 5)")
    p.set_defaults(func=cmd_cron)


async def cmd_scheduler(args: argparse.Namespace) -> int:
    from ..scheduler import Scheduler

    app = load_app(args.app)
    serve_logging(app, args.verbose)
    async with app:
        scheduler = Scheduler(app, misfire_threshold=args.misfire_threshold)
        scheduler.install_signal_handlers()
        defs = await scheduler.sync()
        print(
            f"jobglass scheduler {app.process_id}: {sum(s.enabled for s in defs)} enabled"
            f" schedules of {len(defs)}",
            file=sys.stderr,
            flush=True,
        )
        scheduler.sync_at_start = False
        return await scheduler.run()


async def cmd_schedules(args: argparse.Namespace) -> int:
    if not 0 <= args.next <= 100:
        raise CLIError(f"--next must be 0-100, got {args.next}")
    app = load_app(args.app)
    async with app:
        items = await app.schedules()
    if args.json:
        out = []
        for s in items:
            data = s.to_json()
            if args.next:
                data["nextFireTimes"] = [t.isoformat() for t in _upcoming(s, args.next)]
            out.append(data)
        print(json.dumps({"schedules": out}, indent=2))
        return 0
    console = Console()
    if not items:
        console.print("no schedules (define them in code or jobglass.toml, then run the scheduler)")
        return 0
    table = Table()
    for title in ("Name", "Job", "Cron", "Description", "Enabled", "Paused", "Next fire",
                  "Last fire", "Last run"):  # fmt: skip
        table.add_column(title, no_wrap=title != "Description", overflow="fold")
    if args.next:
        table.add_column(f"Next {args.next} fire times", no_wrap=True)
    for s in items:
        status = s.last_run_status
        last_run = "-" if s.last_run_id is None else f"#{s.last_run_id} {status or '(pruned)'}"
        style = STATUS_STYLE.get(status or "", "")
        row = [
            s.name,
            s.job_name,
            s.expression + ("" if s.timezone == "UTC" else f" ({s.timezone})"),
            s.description or s.describe(),
            "yes" if s.enabled else "[red]no[/]",
            "[yellow]yes[/]" if s.paused else "no",
            _when(s.next_fire_at, s.timezone) if s.enabled and not s.paused else "-",
            _when(s.last_fire_at, s.timezone),
            f"[{style}]{last_run}[/]" if style else last_run,
        ]
        if args.next:
            row.append("\n".join(_when(t, s.timezone) for t in _upcoming(s, args.next)))
        table.add_row(*row)
    console.print(table)
    unstored = [s.name for s in items if not s.stored]
    if unstored:
        console.print(f"[dim]not stored yet (start `jobglass scheduler`): {', '.join(unstored)}[/]")
    return 0


async def cmd_schedule_action(args: argparse.Namespace) -> int:
    app = load_app(getattr(args, "app", None))
    async with app:
        if args.action == "trigger":
            run = await app.trigger_schedule(args.name)
            print(f"schedule {args.name!r}: run {run.id} queued (job {run.job_name},"
                  f" correlation id {run.correlation_id})")  # fmt: skip
            return 0
        if args.action == "pause":
            s = await app.pause_schedule(args.name)
            print(f"schedule {s.name!r} paused")
        else:
            s = await app.resume_schedule(args.name)
            print(f"schedule {s.name!r} resumed; next fire {_when(s.next_fire_at, s.timezone)}")
    return 0


def cmd_cron(args: argparse.Namespace) -> int:
    """Next fire times on stdout, one ISO-8601 time with its UTC offset a line; the English
    description on stderr."""
    if not 1 <= args.n <= 10_000:
        raise CLIError(f"-n must be 1-10000, got {args.n}")
    try:
        schedule = CronSchedule.parse(args.expression, args.tz)
        after = _parse_after(args.after)
        times = next_fire_times(args.expression, after, args.n, args.tz)
    except CronError as err:
        raise CLIError(str(err)) from None
    print(schedule.describe(), file=sys.stderr)
    for when in times:
        print(when.isoformat())
    if len(times) < args.n:
        print(f"(the schedule fires only {len(times)} more time(s))", file=sys.stderr)
    return 0


def _parse_after(text: str | None) -> datetime | None:
    """`--after`: a naive time stays naive (`next_fire_times` reads it as wall time in --tz)."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise CLIError(
            f"--after {text!r}: expected an ISO-8601 time, e.g. 2026-01-05T08:00:00Z"
        ) from None


def _upcoming(s: Schedule, n: int) -> list[datetime]:
    """The next `n` fire times after now."""
    out: list[datetime] = []
    when = s.next_after(datetime.now(UTC))
    while when is not None and len(out) < n:
        out.append(when)
        when = s.next_after(when)
    return out


def _when(value: datetime | None, tz: str) -> str:
    if value is None:
        return "-"
    try:
        local = value.astimezone(ZoneInfo(tz))
    except (ValueError, KeyError):
        local = value
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")
