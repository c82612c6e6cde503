"""The worker: claims runs in batches under a lease, runs them, heartbeats, drains on stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .context import JobContext
from .errors import InvalidInput, NotFound
from .feedback import JobLogger
from .jobs import retry_delay
from .models import Run, RunStatus
from .runner import error_info
from .stores.base import ClaimParams, Feedback, Finish, WorkerInfo

if TYPE_CHECKING:
    from .app import JobGlass
    from .scheduler import Scheduler

log = logging.getLogger("jobglass.worker")


#: How long a busy worker lets finished slots accumulate before it claims again (seconds).
REFILL_WAIT = 0.003
#: Most attempt ends written by one statement.
FINISH_BATCH = 500


class LeaseExpired(Exception):
    """The worker running this attempt stopped heartbeating (it died or hung)."""


class Worker:
    """`jobglass worker MODULE:APP` or `await app.worker(queues=[...]).run()`."""

    def __init__(
        self,
        app: JobGlass,
        queues: Sequence[str] = ("default",),
        concurrency: int | None = None,
        poll_interval: float | None = None,
        grace: float | None = None,
        claim_batch: int | None = None,
        with_scheduler: bool = False,
    ) -> None:
        from .enqueue import check_queue

        if not queues:
            raise InvalidInput("a worker needs at least one queue")
        for queue in queues:
            check_queue(queue)
        s = app.settings
        self.app = app
        self.queues = list(queues)
        self.concurrency = concurrency or s.concurrency
        if self.concurrency < 1:
            raise InvalidInput("concurrency must be >= 1")
        self.grace = s.grace_seconds if grace is None else grace
        self.claim_batch = claim_batch or s.claim_batch
        #: free slots below which a busy worker waits REFILL_WAIT before claiming again
        self._refill = max(1, min(self.claim_batch, self.concurrency) // 4)
        self._poll = poll_interval if poll_interval else s.poll_interval
        self.id = f"{socket.gethostname()}-{os.getpid()}-{id(self) & 0xFFFFFF:06x}"
        self._active: dict[int, tuple[Run, asyncio.Task[Any], JobContext | None]] = {}
        self._contexts: dict[int, JobContext] = {}
        #: runs whose handler has returned and whose end is being written: their slot is free
        #: (the next claim need not wait for a commit), their lease still renewed
        self._finishing: set[int] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._finishes: asyncio.Queue[tuple[Finish, JobLogger, asyncio.Future[bool]]] = (
            asyncio.Queue()
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self.completed = 0
        self.signals = 0
        self.with_scheduler = with_scheduler
        self._scheduler: Scheduler | None = None

    # -- control --------------------------------------------------------------------------------

    def stop(self) -> None:
        """First call: stop claiming and drain. Second call: stop waiting, cancel in-flight runs."""
        self.signals += 1
        if self._stopping.is_set():
            self._hurry.set()
        self._stopping.set()
        self._wake.set()
        if self._scheduler is not None:
            self._scheduler.stop()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)

    def _on_wakeup(self, queue: str) -> None:
        if queue in self.queues:
            self._wake.set()

    # -- main loop --------------------------------------------------------------------------------

    async def run(self) -> int:
        """Work until stopped; returns 0 after a clean shutdown."""
        app = self.app
        store = await app._ready()
        if self.with_scheduler:  # sync first: a bad schedule config stops the worker here
            from .scheduler import Scheduler

            self._scheduler = Scheduler(app, sync=False)
            await self._scheduler.sync()
        poll = self._poll or (0.1 if not store.pushes_events else 2.0)
        info = WorkerInfo(self.id, socket.gethostname(), os.getpid(), self.queues, self.concurrency)
        await store.upsert_worker(info)
        app.add_wakeup(self._on_wakeup)
        self._tasks = [
            asyncio.create_task(self._finisher(), name="jobglass-finisher"),
            asyncio.create_task(self._heartbeat(), name="jobglass-heartbeat"),
            asyncio.create_task(self._maintenance(), name="jobglass-maintenance"),
        ]
        if self._scheduler is not None:
            scheduling = asyncio.create_task(self._scheduler.run(), name="jobglass-scheduler")
            self._tasks.append(scheduling)
        for listener in app.attempt_listeners:  # e.g. the metrics, made before the first run
            prepare = getattr(listener, "prepare", None)
            if prepare is not None:
                prepare()
        # PostgreSQL: LISTEN; SQLite: a watch on the file's commits (wake-ups only)
        self._tasks.append(asyncio.create_task(store.listen(self._notified)))
        log.info(
            "worker %s started: queues=%s concurrency=%d", self.id, self.queues, self.concurrency
        )
        try:
            await self._claim_loop(poll)
            await self._drain()
        finally:
            app._wakeups.remove(self._on_wakeup)
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await store.remove_worker(self.id)
        log.info("worker %s stopped after %d runs", self.id, self.completed)
        return 0

    def _notified(self, channel: str, payload: str) -> None:
        if channel == "jobglass_wakeup" and (not payload or payload in self.queues):
            self._wake.set()

    async def _claim_loop(self, poll: float) -> None:
        store = self.app.store
        while not self._stopping.is_set():
            free = self._free_slots()
            claimed: list[Run] = []
            if free > 0:
                self._wake.clear()
                try:
                    claimed = await store.claim_runs(
                        ClaimParams(
                            self.id,
                            self.queues,
                            min(free, self.claim_batch),
                            self.app.settings.lease_seconds,
                        )
                    )
                except Exception:
                    log.exception("claiming failed; retrying")
                    await asyncio.sleep(poll)
                    continue
                for run in claimed:
                    self._start(run)
                if len(claimed) == min(free, self.claim_batch) < free:
                    continue  # a full batch and still room: there may be more due runs now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)
            # Busy: give the runs ending around now a moment, so that one claim refills many
            # slots instead of one claim per finished run. An idle worker claims at once.
            if self._active and self._free_slots() < self._refill:
                await asyncio.sleep(REFILL_WAIT)

    def _free_slots(self) -> int:
        """Handlers that may start now; at most `concurrency` more ends waiting to be written."""
        running = len(self._active) - len(self._finishing)
        return min(self.concurrency - running, 2 * self.concurrency - len(self._active))

    def _start(self, run: Run) -> None:
        task = asyncio.create_task(self._execute(run), name=f"jobglass-run-{run.id}")
        self._active[run.id] = (run, task, None)

    async def _execute(self, run: Run) -> None:
        try:
            definition = self.app.jobs.get(run.job_name)
            if definition is None:
                err = NotFound(f"job {run.job_name!r} is not registered in this worker")
                fin = Finish(
                    run.id, run.attempt, RunStatus.FAILED, error=error_info(err, run.attempt)
                )
                if (await self.app.store.finish_runs([fin]))[0]:
                    self.app.publish_status(run.id, fin.status)
                return
            result = await self.app.execute(
                run,
                ctx_hook=lambda ctx: self._contexts.__setitem__(run.id, ctx),
                finish=self._finish,
            )
            self.completed += 1
            status = result.finish.status
            if self.app.hooks.get(_HOOK.get(str(status), ""), None):
                fresh = await self.app.store.get_run(run.id)
                if fresh is not None:
                    await self.app._call_hooks(str(status), fresh)
        except Exception:
            log.exception("run %s: unexpected worker error", run.id)
        finally:
            self._active.pop(run.id, None)
            self._finishing.discard(run.id)
            self._contexts.pop(run.id, None)
            self._wake.set()

    async def _finish(self, fin: Finish, logger: JobLogger) -> bool:
        """Queue the end of an attempt; the finisher writes many at once, each with the
        attempt's last lines. The slot is free from here: claiming more runs overlaps with
        this write instead of waiting for it. The flusher's ticks leave the logger to the
        finisher: a tick used to write the last lines of every end still waiting (17% of
        no-op runs' summary lines), each an extra update of its run."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.app.flusher.forget(logger)
        self._finishing.add(fin.run_id)
        self._wake.set()
        await self._finishes.put((fin, logger, fut))
        return await fut

    async def _finisher(self) -> None:
        while True:
            first = await self._finishes.get()
            if self._finishes.qsize() < FINISH_BATCH and len(self._active) > 1:
                await asyncio.sleep(0)  # runs ending in this same loop turn join the batch
            batch = [first]
            while not self._finishes.empty() and len(batch) < FINISH_BATCH:
                batch.append(self._finishes.get_nowait())
            flusher = self.app.flusher
            live = [(fin, logger, fut) for fin, logger, fut in batch if not logger.lost]
            try:
                results = await self._write_ends([(fin, logger) for fin, logger, _ in live])
            except Exception as err:
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            for _, logger, fut in batch:
                flusher.forget(logger)
                if logger.lost and not fut.done():
                    fut.set_result(False)
            for (fin, _, fut), ok in zip(live, results, strict=True):
                if ok:
                    self.app.publish_status(fin.run_id, fin.status)
                if not fut.done():
                    fut.set_result(ok)

    async def _write_ends(self, ends: list[tuple[Finish, JobLogger]]) -> list[bool]:
        """The attempts' last lines and state and their ends, in one transaction. If that
        fails, the lines go through the flusher (which isolates a batch the store refuses)
        and the ends alone after them."""
        if not ends:
            return []
        store, flusher = self.app.store, self.app.flusher
        fins = [fin for fin, _ in ends]
        last: list[tuple[JobLogger, Feedback]] = []
        try:
            async with flusher.exclusive():
                for _, logger in ends:
                    if (fb := logger.drain()) is not None:
                        last.append((logger, fb))
                results = await store.finish_runs(fins, [fb for _, fb in last])
        except BaseException as err:
            for _, logger in ends:  # the flusher owns their lines again
                flusher.attach(logger)
            for logger, fb in last:
                logger.requeue(fb)
            if not last or not isinstance(err, Exception):
                raise
            log.warning("writing %d ends with their last lines failed; apart", len(fins))
            await flusher.flush()  # isolates a batch the store refuses
            return await store.finish_runs(fins)
        ended = {(f.run_id, f.attempt) for f, ok in zip(fins, results, strict=True) if ok}
        flusher.written([fb for _, fb in last if (fb.run_id, fb.attempt) in ended])
        return results

    async def _heartbeat(self) -> None:
        """Renew leases and pick up cancel requests from any process, about twice a second."""
        store = self.app.store
        lease = self.app.settings.lease_seconds
        interval = min(0.5, lease / 3)
        while True:
            await asyncio.sleep(interval)
            held = [(rid, run.attempt) for rid, (run, _, _) in list(self._active.items())]
            try:
                beat = await store.heartbeat(self.id, held, lease)
            except Exception:
                log.warning("heartbeat failed; retrying", exc_info=True)
                continue
            for rid in beat.cancel_requested:
                ctx = self._contexts.get(rid)
                if ctx is not None:
                    ctx.request_cancel("cancel requested")
            for rid in beat.lost:
                ctx = self._contexts.get(rid)
                if ctx is not None:
                    ctx.log.lost = True

    async def _maintenance(self) -> None:
        """Take back runs whose worker died; prune old runs."""
        lease = self.app.settings.lease_seconds
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + 5
        while True:
            try:
                await self.reclaim_expired()
                if loop.time() >= next_prune:
                    next_prune = loop.time() + self.app.settings.prune_interval
                    pruned = await self.app.prune()
                    if pruned:
                        log.info("pruned %d finished runs", pruned)
                    pruned_logs = await self.app.prune_app_logs()
                    if pruned_logs:
                        log.info("pruned %d app/audit log records", pruned_logs)
            except Exception:
                log.warning("maintenance failed; retrying", exc_info=True)
            await asyncio.sleep(min(5.0, max(0.2, lease / 4)))

    async def reclaim_expired(self) -> int:
        """Each expired attempt counts: retried by its policy, else failed. Never lost."""
        store = self.app.store
        expired = await store.reclaim_expired()
        if not expired:
            return 0
        finishes = []
        for run in expired:
            err = LeaseExpired(
                f"worker {run.worker_id} stopped heartbeating during attempt {run.attempt}"
            )
            info = error_info(err, run.attempt)
            info["traceback"] = None
            definition = self.app.jobs.get(run.job_name)
            if run.attempt < run.max_attempts:
                delay = retry_delay(
                    run.retry, run.attempt, definition.retry if definition else None
                )
                finishes.append(
                    Finish(
                        run.id,
                        run.attempt,
                        RunStatus.RETRYING,
                        error=info,
                        retry_at=datetime.now(UTC) + timedelta(seconds=delay),
                    )
                )
            else:
                finishes.append(Finish(run.id, run.attempt, RunStatus.FAILED, error=info))
        done = await store.finish_runs(finishes)
        for run, fin, ok in zip(expired, finishes, done, strict=True):
            if ok:
                log.warning("run %s: lease expired on attempt; now %s", fin.run_id, fin.status)
                self.app.publish_status(fin.run_id, fin.status)
                self.app.attempt_ended(run, fin, None)  # metrics count the lost attempt too
        return sum(done)

    async def _drain(self) -> None:
        """Let in-flight runs finish within the grace period, then stop them for retry."""
        if not self._active:
            return
        log.info("worker %s draining %d runs (grace %.0fs)", self.id, len(self._active), self.grace)
        tasks = [task for _, task, _ in self._active.values()]
        everything = asyncio.ensure_future(asyncio.wait(tasks))
        hurry = asyncio.ensure_future(self._hurry.wait())
        await asyncio.wait(
            [everything, hurry], timeout=self.grace, return_when=asyncio.FIRST_COMPLETED
        )
        hurry.cancel()
        everything.cancel()
        pending = [t for t in tasks if not t.done()]
        if pending:
            log.warning("grace period over: stopping %d runs; they will be retried", len(pending))
            for ctx in list(self._contexts.values()):
                ctx.request_cancel("shutdown")
                ctx.cancel_reason = "shutdown"
            await asyncio.wait(pending, timeout=10)


_HOOK = {
    "SUCCESS": "completed",
    "FAILED": "failed",
    "RETRYING": "retrying",
    "CANCELLED": "cancelled",
}
