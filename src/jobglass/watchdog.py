"""Hard stops for running attempts: a lost lease, the timeout, or shutdown.

One task per event loop checks every running attempt each `INTERVAL`, instead of a sleeping
task per attempt: a worker finishing thousands of short runs a second would otherwise create
and cancel a second task for each of them. A cancel requested by a user stays cooperative
(`ctx.cancelled`) until the timeout.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import weakref
from typing import Any

from .context import JobContext

INTERVAL = 0.05  # seconds between checks: how late a hard stop may come


class Watchdog:
    """The attempts of one event loop, each with its handler task and deadline."""

    def __init__(self) -> None:
        self.watched: dict[asyncio.Future[Any], tuple[JobContext, float | None]] = {}
        self.task: asyncio.Task[None] | None = None

    def watch(self, ctx: JobContext, task: asyncio.Future[Any], timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        self.watched[task] = (ctx, deadline)
        if self.task is None or self.task.done():  # a fresh context: not the first run's
            loop = asyncio.get_running_loop()
            self.task = loop.create_task(self._run(), context=contextvars.Context())

    def forget(self, task: asyncio.Future[Any]) -> None:
        self.watched.pop(task, None)

    async def _run(self) -> None:
        while self.watched:
            await asyncio.sleep(INTERVAL)
            now = time.monotonic()
            for task, (ctx, deadline) in list(self.watched.items()):
                if task.done():
                    self.watched.pop(task, None)
                elif _must_stop(ctx, deadline, now):
                    self.watched.pop(task, None)
                    ctx._mark_cancelled()
                    task.cancel()
        self.task = None


def _must_stop(ctx: JobContext, deadline: float | None, now: float) -> bool:
    if ctx.log.lost:
        ctx.cancel_reason = "lease lost"
        return True
    if deadline is not None and now >= deadline:
        if not ctx.cancelled:
            ctx.cancel_reason = "timeout"
        return True
    return ctx.cancel_reason == "shutdown"


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = (
    weakref.WeakKeyDictionary()
)


def watchdog() -> Watchdog:
    """The running loop's watchdog (sync jobs' private loops get their own)."""
    loop = asyncio.get_running_loop()
    dog = _watchdogs.get(loop)
    if dog is None:
        dog = _watchdogs[loop] = Watchdog()
    return dog
