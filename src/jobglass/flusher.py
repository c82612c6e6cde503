"""Writes every dirty JobLogger in one transaction per tick, then publishes the change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from .feedback import JobLogger
from .stores.base import Feedback

log = logging.getLogger("jobglass.flusher")

WriteBatch = Callable[[Sequence[Feedback]], Awaitable[list[bool]]]
Published = Callable[[Sequence[Feedback]], None]


class FeedbackFlusher:
    """One per process: coalesces progress, batches log rows, fences lost attempts."""

    def __init__(self, write: WriteBatch, publish: Published, interval: float = 0.1) -> None:
        self._write = write
        self._publish = publish
        self.interval = interval
        self._loggers: dict[tuple[int, int], JobLogger] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.flushes = 0
        self._failures: dict[int, int] = {}
        self.rows = 0

    def attach(self, logger: JobLogger) -> None:
        self._loggers[(logger.run_id, logger.attempt)] = logger
        logger._flusher = self  # type: ignore[attr-defined]
        logger._on_pending = self._nudge
        self._ensure_started()

    async def detach(self, logger: JobLogger) -> None:
        """Final flush of this logger, then forget it."""
        if logger.dirty:
            await self.flush()
        else:  # already drained, maybe by a flush still writing it: wait for that one only
            async with self._lock:
                pass
        self._loggers.pop((logger.run_id, logger.attempt), None)

    def forget(self, logger: JobLogger) -> None:
        """Stop tracking a logger whose lines the caller writes itself (a worker: with the
        attempt's end, under `exclusive`) or has just written."""
        self._loggers.pop((logger.run_id, logger.attempt), None)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """No flush meanwhile (one in flight is waited for): the caller drains some loggers
        and writes their batches itself, e.g. with the ends of their attempts."""
        async with self._lock:
            yield

    def written(self, batches: Sequence[Feedback]) -> None:
        """Batches the caller wrote itself: counted and published as a flush does."""
        if batches:
            self.rows += sum(len(b.logs) for b in batches)
            self._publish(batches)

    def _nudge(self, _logger: JobLogger) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    def _ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._run(), name="jobglass-flusher")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # the store is down: keep the buffers, try again next tick
                log.exception("feedback flush failed; retrying")
                await asyncio.sleep(min(1.0, self.interval * 10))

    async def flush(self) -> None:
        """Drain all loggers and write them in one transaction."""
        async with self._lock:
            loggers = list(self._loggers.values())
            batches: list[Feedback] = []
            owners: list[JobLogger] = []
            for logger in loggers:
                if logger.lost:
                    continue
                batch = logger.drain()
                if batch is not None:
                    batches.append(batch)
                    owners.append(logger)
            if not batches:
                return
            accepted: list[bool | None]
            try:
                accepted = list(await self._write(batches))
            except Exception:
                if len(batches) == 1:
                    owners[0].requeue(batches[0])
                    raise
                accepted = await self._write_one_by_one(owners, batches)
            except BaseException:
                for logger, batch in zip(owners, batches, strict=True):
                    logger.requeue(batch)
                raise
            self.flushes += 1
            published = []
            for logger, batch, ok in zip(owners, batches, accepted, strict=True):
                if ok:
                    self.rows += len(batch.logs)
                    published.append(batch)
                elif ok is False:
                    logger.lost = True  # fenced: another worker owns this run now
            if published:
                self._publish(published)

    async def _write_one_by_one(
        self, owners: list[JobLogger], batches: list[Feedback]
    ) -> list[bool | None]:
        """A shared write failed: keep one run's bad batch from blocking every other run.

        A batch that still fails alone is put back; if the others went through, the store
        is fine and that batch is the problem, so after a few tries it is dropped (and said).
        """
        results: list[bool | None] = []
        refused: list[tuple[JobLogger, Feedback]] = []
        for logger, batch in zip(owners, batches, strict=True):
            try:
                results.append((await self._write([batch]))[0])
                self._failures.pop(id(logger), None)
            except Exception:
                refused.append((logger, batch))
                results.append(None)  # not written; nothing to publish
        if len(refused) == len(batches):
            for logger, batch in refused:
                logger.requeue(batch)
            raise RuntimeError("feedback store write failed for every run")
        for logger, batch in refused:
            tries = self._failures.get(id(logger), 0) + 1
            self._failures[id(logger)] = tries
            if tries >= 3:
                log.error(
                    "run %s: dropping %d log lines the store refuses", batch.run_id, len(batch.logs)
                )
                self._failures.pop(id(logger), None)
            else:
                logger.requeue(batch)
        return results

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()
