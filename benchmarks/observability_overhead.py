"""Cost of the observability defaults: no-op runs/s through an in-process worker on SQLite.

    python benchmarks/observability_overhead.py [--runs 3000] [--rounds 5] [--log off|json|text]

Configurations, measured in alternating rounds on a fresh database each time (median shown):

- bare:           `app.middleware = []`, `app.attempt_listeners = []`
- observability:  context + logging middleware and the metrics listener (issue 7's stack)
- defaults:       whatever `JobGlass()` installs today (the above plus other defaults)

`--log off` (default) leaves logging unconfigured, as a library must: the start/end lines
are skipped by `isEnabledFor`. `--log json` / `--log text` configure INFO logging to
/dev/null, so every run formats and writes its two lines; that is the cost of a worker
that really logs.

CPU per run is the whole process's (the SQLite store's threads too); "loop CPU" is the
main thread's alone, where the worker's event loop runs every middleware and listener and
which bounds runs/s. Both are noisy on a shared machine: compare configurations within one
invocation, and run it a few times.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any

from jobglass.app import EnqueueRequest, JobGlass
from jobglass.context import JobContext
from jobglass.feedback import JobLogger
from jobglass.models import Run, RunStatus
from jobglass.observe.context import run_context_middleware
from jobglass.observe.logging import configure_logging, logging_middleware
from jobglass.observe.metrics import metrics_listener
from jobglass.stores.base import Finish

CONFIGS = ("bare", "observability", "defaults")


def build(config: str, path: str, concurrency: int) -> JobGlass:
    app = JobGlass(database_url=f"sqlite:///{path}", concurrency=concurrency)

    @app.job(name="noop")
    async def noop(ctx: Any) -> None:
        return None

    if config == "bare":
        app.middleware = []
        app.attempt_listeners = []
    elif config == "observability":
        app.middleware = [run_context_middleware, logging_middleware]
        app.attempt_listeners = [metrics_listener(app)]
    return app


async def measure(config: str, runs: int, concurrency: int) -> tuple[float, float, float]:
    """(runs per wall-clock second, CPU microseconds per run of this process, and of the
    main thread, which runs the worker's event loop)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = build(config, os.path.join(tmp, "bench.db"), concurrency)
        async with app:
            for start in range(0, runs, 1000):
                count = min(1000, runs - start)
                await app.enqueue_many([EnqueueRequest("noop") for _ in range(count)])
            worker = app.worker(concurrency=concurrency)
            task = asyncio.create_task(worker.run())
            started, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
            while worker.completed < runs:  # noqa: ASYNC110 - the worker's own counter
                await asyncio.sleep(0.005)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            loop_cpu = time.thread_time() - loop_cpu
            worker.stop()
            await task
            if config != "bare":
                executed = app.metrics.sample(
                    "job_executions_total", job_name="noop", status="success"
                )
                assert executed == runs, (config, executed)
    return runs / elapsed, cpu / runs * 1e6, loop_cpu / runs * 1e6


async def isolated_cost(repeat: int = 20_000) -> tuple[float, float]:
    """Microseconds per attempt of (context + logging middleware, metrics listener) alone."""
    app = build("observability", os.path.join(tempfile.gettempdir(), "unused.db"), 1)
    logger = JobLogger(1, "noop")
    ctx = JobContext(run_id=1, job_name="noop", log=logger, params={"n": 1}, app=app)
    run = Run(1, "noop", "default", RunStatus.RUNNING, attempt=1)
    finish = Finish(1, 1, RunStatus.SUCCESS, duration_ms=1)

    async def handler() -> None:
        return None

    async def chain(middleware: list[Any]) -> None:
        nxt: Any = handler
        for mw in reversed(middleware):
            nxt = (lambda m, n: lambda: m(ctx, n))(mw, nxt)
        await nxt()

    async def per_call(middleware: list[Any]) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(repeat):
                await chain(middleware)
            best = min(best, (time.perf_counter() - started) / repeat)
        return best * 1e6

    middleware_us = await per_call(app.middleware) - await per_call([])
    listener = app.attempt_listeners[0]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            listener(run, finish, logger)
        best = min(best, (time.perf_counter() - started) / repeat)
    return middleware_us, best * 1e6


def cli() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--log", choices=("off", "json", "text"), default="off")
    args = parser.parse_args()
    if args.log != "off":
        devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
        configure_logging(
            json=args.log == "json", level=logging.INFO, stream=devnull, batched=True
        )  # as `jobglass worker` does
        logging.getLogger("jobglass.worker").setLevel(logging.WARNING)
    return args


async def main(args: argparse.Namespace) -> None:
    await measure("bare", min(args.runs, 500), args.concurrency)  # warm-up
    rate: dict[str, list[float]] = {name: [] for name in CONFIGS}
    cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
    loop_cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
    order = list(CONFIGS)
    for _ in range(args.rounds):
        random.shuffle(order)  # no configuration always runs first (or last) in a round
        for name in order:
            runs_per_s, cpu_us, loop_us = await measure(name, args.runs, args.concurrency)
            rate[name].append(runs_per_s)
            cpu[name].append(cpu_us)
            loop_cpu[name].append(loop_us)
    best_rate = {name: max(values) for name, values in rate.items()}
    med_rate = {name: statistics.median(values) for name, values in rate.items()}
    med_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    med_loop = {name: statistics.median(values) for name, values in loop_cpu.items()}
    print(
        f"no-op runs through an in-process worker on SQLite: {args.runs} runs x "
        f"{args.rounds} rounds, concurrency {args.concurrency}, logging {args.log}"
    )
    print(
        f"  {'':<14} {'best runs/s':>11} {'median':>8} {'CPU us/run':>10} {'loop CPU':>8}   vs bare"
    )
    for name in CONFIGS:
        line = (
            f"  {name:<14} {best_rate[name]:>11,.0f} {med_rate[name]:>8,.0f}"
            f" {med_cpu[name]:>10,.0f} {med_loop[name]:>8,.0f}"
        )
        if name != "bare":
            line += (
                f"   runs/s ratio {best_rate[name] / best_rate['bare']:.3f} (best), "
                f"{med_rate[name] / med_rate['bare']:.3f} (median); "
                f"CPU per run {(med_cpu[name] / med_cpu['bare'] - 1) * 100:+.1f}%, "
                f"loop {med_loop[name] - med_loop['bare']:+.0f} us"
            )
        print(line)
    middleware_us, listener_us = await isolated_cost()
    total = middleware_us + listener_us
    print(
        f"  in isolation: middleware {middleware_us:.1f} us + metrics listener "
        f"{listener_us:.1f} us = {total:.1f} us per attempt, "
        f"{total / med_cpu['bare'] * 100:.1f}% of a bare run's {med_cpu['bare']:.0f} us CPU"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(cli()))
