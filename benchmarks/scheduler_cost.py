"""What a scheduler process costs: 1,000 every-minute schedules for 3 minutes, real clock.

    python benchmarks/scheduler_cost.py                       # SQLite in a temp dir
    python benchmarks/scheduler_cost.py --database-url postgresql://postgres@127.0.0.1/test
    python benchmarks/scheduler_cost.py --spread              # fires spread over the minute

By default every schedule fires at second 0 of each minute (`0 * * * * ?`): the worst case,
1,000 fires in one tick. The figure is this process's CPU time (user + system, every thread:
with SQLite that includes the database work, which runs in-process) over wall time, measured
after the schedules are synced. With PostgreSQL the server's own CPU is not included.
The goal: under 5% of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import tempfile
import time
from pathlib import Path

from jobglass import JobContext, JobGlass
from jobglass.scheduler import Scheduler, TickResult


class MeasuredScheduler(Scheduler):
    """Records how long each tick that fired something took."""

    bursts: list[tuple[int, float]]

    async def tick(self) -> TickResult:
        start = time.perf_counter()
        result = await super().tick()
        if result.due:
            self.bursts.append((result.enqueued, time.perf_counter() - start))
        return result


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main(args: argparse.Namespace) -> int:
    url = args.database_url
    tmp = None
    if url is None:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    app = JobGlass(url)

    @app.job(name="tick")
    async def tick(ctx: JobContext, n: int = 0) -> None: ...

    for i in range(args.schedules):
        second = i % 60 if args.spread else 0
        app.schedule("tick", name=f"bench-{i:04d}", cron=f"{second} * * * * ?", params={"n": i})
    async with app:
        scheduler = MeasuredScheduler(app)
        scheduler.bursts = []
        await scheduler.sync()
        duration = args.minutes * 60
        where = "spread over" if args.spread else "all at second 0 of"
        target = url.split("@")[-1]
        print(f"{args.schedules} schedules ({where} each minute), {target}, {duration:.0f} s ...",
              file=sys.stderr)  # fmt: skip
        wall0, cpu0, proc0 = time.monotonic(), cpu_seconds(), time.process_time()
        task = asyncio.create_task(scheduler.run())
        await asyncio.sleep(duration)
        scheduler.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        wall, cpu = time.monotonic() - wall0, cpu_seconds() - cpu0
        proc = time.process_time() - proc0
    if tmp is not None:
        tmp.cleanup()
    fired = sum(n for n, _ in scheduler.bursts)
    worst = max(scheduler.bursts, key=lambda b: b[1], default=(0, 0.0))
    print(f"fires enqueued:     {fired} in {len(scheduler.bursts)} ticks that fired"
          f" ({scheduler.ticks} ticks in all)")  # fmt: skip
    print(f"slowest tick:       {worst[0]} fires in {worst[1] * 1000:.0f} ms")
    print(f"wall time:          {wall:.1f} s")
    print(f"CPU time:           {cpu:.2f} s (getrusage), {proc:.2f} s (process_time)")
    print(f"scheduler CPU:      {100 * cpu / wall:.2f}% of one core")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--spread", action="store_true", help="spread fires over the minute")
    sys.exit(asyncio.run(main(parser.parse_args())))
