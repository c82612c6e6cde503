"""The app's log buffer and its background writer (one per app, shared by all loggers).

Log calls append to the buffer from any thread; one asyncio task on the loop that uses the
store writes it in one transaction per batch (about every `flush_interval`, sooner when
`batch_size` records wait), like the run-feedback flusher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .observe.redact import is_sensitive, redact
from .observe.request import RequestContextConfig
from .stores.applog_types import AppLogRecord

if TYPE_CHECKING:
    from .applog import AppLogger

__all__ = ["AppLogHub"]

_internal = logging.getLogger("jobglass.applog")
_SCALARS = frozenset({str, int, float, bool, type(None)})


class AppLogHub:
    """Per app: the shared buffer, its background writer, and the request-context config."""

    def __init__(
        self,
        write: Callable[[Sequence[AppLogRecord]], Awaitable[int]],
        *,
        sensitive_keys: frozenset[str],
        interval: float = 0.1,
        batch_size: int = 5_000,
        max_buffered: int = 500_000,
        request_config: RequestContextConfig | None = None,
        store: Callable[[], object | None] = lambda: True,
    ) -> None:
        self._write = write
        self._store = store  # the app's open store, None when closed
        self._closed_with: object | None = None  # the store that was open at close()
        self.sensitive_keys = sensitive_keys
        self.interval = interval
        self.batch_size = batch_size
        self.max_buffered = max_buffered
        self.request_config = request_config or RequestContextConfig()
        self._safe_keys: set[str] = set()  # context keys known not to be sensitive
        self._logger: AppLogger | None = None
        self._buffer: list[AppLogRecord] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.flushes = 0
        self.dropped = 0

    @property
    def logger(self) -> AppLogger:
        """The base logger (`app.log`); every chain starts here."""
        if self._logger is None:
            from .applog import AppLogger

            self._logger = AppLogger(self)
        return self._logger

    def clean(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """A redacted copy of a context dict. Flat dicts of plain values with known-safe keys
        (the usual case) take a fast path; anything else goes through `redact`."""
        if type(context) is dict and self._safe_keys.issuperset(context):
            for value in context.values():
                if type(value) not in _SCALARS:
                    break
            else:
                return dict(context)
        elif type(context) is dict and len(self._safe_keys) < 10_000:
            for key in context:
                if type(key) is str and not is_sensitive(key, self.sensitive_keys):
                    self._safe_keys.add(key)
        clean = redact(context, self.sensitive_keys)
        return clean if isinstance(clean, dict) else {}

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def append(self, record: AppLogRecord) -> None:
        with self._lock:
            buffered = len(self._buffer)
            if buffered >= self.max_buffered:
                self.dropped += 1
                if self.dropped == 1:
                    _internal.error("app log buffer full (%d records): dropping", buffered)
                return
            self._buffer.append(record)
            buffered += 1
        if self._task is None:
            self._try_start()  # the first record on the app's loop starts the writer
        elif buffered == 1 or buffered == self.batch_size:
            self._nudge()

    def _nudge(self) -> None:
        wake, loop = self._wake, self._loop
        if wake is None or loop is None:
            self._try_start()
            return
        if threading.get_ident() == self._loop_thread:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: close() flushed
                loop.call_soon_threadsafe(wake.set)

    def _try_start(self) -> None:
        """Start the writer on the running loop of this thread, if there is one."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # buffered until `await flush()` on the app's loop
        store = self._store()
        if store is not None and store is not self._closed_with:
            self.start()  # not after close(): a stray log call must not reopen the store

    def start(self) -> None:
        """Start the background writer on the running loop (idempotent).

        The writer lives on one loop, the one that uses the store; log calls from other
        threads only nudge it. A sync (WSGI) app calls `await app.log.flush()` once on the
        loop that opened the app; until then its records wait in the buffer.
        """
        loop = asyncio.get_running_loop()
        if self._alive() and self._loop is loop:
            return
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task = loop.create_task(self._run(), name="jobglass-applog-flusher")
        if self._buffer:
            self._wake.set()

    def _alive(self) -> bool:
        loop = self._loop
        return (
            self._task is not None
            and not self._task.done()
            and loop is not None
            and not loop.is_closed()
            and loop.is_running()
        )

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            await wake.wait()
            wake.clear()
            if len(self._buffer) < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.interval)
                wake.clear()
            try:
                await self._flush()
            except Exception:  # the store is down: keep the records, try again later
                _internal.exception("app log flush failed; retrying")
                await asyncio.sleep(min(1.0, self.interval * 10))
                wake.set()

    async def flush(self) -> None:
        """Write everything buffered, `batch_size` records per transaction.

        Runs on the writer's loop: called from another (live) loop, it is handed over.
        """
        running = asyncio.get_running_loop()
        loop = self._loop
        if loop is not None and loop is not running and self._alive():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._flush(), loop))
            return
        if not self._alive() or loop is not running:
            self.start()
        await self._flush()

    async def _flush(self) -> None:
        assert self._flush_lock is not None
        async with self._flush_lock:
            while True:
                with self._lock:
                    if not self._buffer:
                        return
                    batch = self._buffer[: self.batch_size]
                    del self._buffer[: self.batch_size]
                try:
                    await self._write(batch)
                except BaseException:
                    with self._lock:
                        self._buffer[:0] = batch
                    raise
                self.flushes += 1
                self.written += len(batch)

    async def close(self) -> None:
        """Write what is buffered, then stop the writer (errors are logged, not raised)."""
        if self._buffer:
            try:
                await self.flush()
            except Exception:
                _internal.exception("app log: final flush failed; %d records lost", self.pending)
        self._closed_with = self._store()
        task, self._task = self._task, None
        if task is not None and not task.done():
            if task.get_loop() is asyncio.get_running_loop():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            else:
                with contextlib.suppress(RuntimeError):
                    task.get_loop().call_soon_threadsafe(task.cancel)
