"""The app's log buffer and its background writer (one per app, shared by all loggers).

Log calls append to the buffer from any thread; one asyncio task on the loop that uses the
store writes it in one transaction per batch (about every `flush_interval`, sooner when
`batch_size` records wait), like the run-feedback flusher.

The buffer is a `deque`: `append` and `popleft` are atomic, so a log call takes no lock
(four threads logging at full speed would otherwise queue on it). It holds plain tuples in
`AppLogRecord` field order, contexts already encoded as JSON text, and hands them to the
store as a `RecordBatch`: the cyclic garbage collector stops tracking a plain tuple of plain
values after one pass, but it keeps walking a tuple subclass, a dict or any record object
for as long as it lives, and a busy app buffers hundreds of thousands of them.

The writer tells log calls when to wake it through `_wake_at`, a buffer length: 1 while it
waits for a first record, `batch_size` while it gives a batch time to fill, never while it
writes (it drains the buffer before it waits again). A log call that sees the buffer reach
`_wake_at` wakes the writer once; a wake-up that comes late only makes one batch smaller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .observe.redact import is_sensitive, redact
from .observe.request import RequestContextConfig
from .stores.applog_types import AppLogRecord, RecordBatch

if TYPE_CHECKING:
    from .applog import AppLogger

__all__ = ["AppLogHub"]

_internal = logging.getLogger("jobglass.applog")
_SCALARS = frozenset({str, int, float, bool, type(None)})
#: `_wake_at` while the writer needs no wake-up (it is writing, or already woken).
_NEVER = 1 << 62


class AppLogHub:
    """Per app: the shared buffer, its background writer, and the request-context config."""

    def __init__(
        self,
        write: Callable[[Sequence[AppLogRecord]], Awaitable[int]],
        *,
        sensitive_keys: frozenset[str],
        interval: float = 0.1,
        batch_size: int | None = None,
        max_buffered: int = 500_000,
        request_config: RequestContextConfig | None = None,
        store: Callable[[], object | None] = lambda: True,
    ) -> None:
        self._write = write
        self._store = store  # the app's open store, None when closed
        self._closed_with: object | None = None  # the store that was open at close()
        self.sensitive_keys = sensitive_keys
        self.interval = interval
        #: Records per transaction; by default the store's `app_log_batch_size` (PostgreSQL
        #: takes bigger batches than SQLite, whose one writer a batch holds), else 5,000.
        self.batch_size = batch_size or 5_000
        self._batch_from_store = batch_size is None
        self.max_buffered = max_buffered
        self.request_config = request_config or RequestContextConfig()
        self._safe_keys: set[str] = set()  # context keys known not to be sensitive
        self._logger: AppLogger | None = None
        #: `AppLogRecord` fields as a plain tuple (see above); never replaced: log calls hold it
        self._buffer: deque[tuple[Any, ...]] = deque()
        self._wake_at = 1  # a log call that makes the buffer this long wakes the writer
        self._lock = threading.Lock()  # only for the rare paths (dropping, counting drops)
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

    def append(self, record: AppLogRecord | tuple[Any, ...]) -> None:
        """Buffer one record (any thread, no lock); `AppLogger` inlines this."""
        buffer = self._buffer
        if len(buffer) >= self.max_buffered:
            self._drop()
            return
        buffer.append(record if type(record) is tuple else tuple(record))
        if len(buffer) >= self._wake_at:
            self._nudge()

    def _drop(self) -> None:
        with self._lock:
            self.dropped += 1
            first = self.dropped == 1
        if first:
            _internal.error("app log buffer full (%d records): dropping", len(self._buffer))

    def _nudge(self) -> None:
        """Wake the writer (from a log call that made the buffer `_wake_at` long)."""
        self._wake_at = _NEVER
        wake, loop = self._wake, self._loop
        if self._task is None or wake is None or loop is None:
            self._wake_at = 1  # no writer yet: every record tries to start one
            self._try_start()  # the first record on the app's loop starts the writer
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
        if self._batch_from_store:
            size = getattr(self._store(), "app_log_batch_size", None)
            if isinstance(size, int) and size > 0:
                self.batch_size = size
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
        buffer = self._buffer
        assert wake is not None
        while True:
            # armed before looking: a record added after the look sees `_wake_at` == 1
            self._wake_at = 1
            if not buffer:
                await wake.wait()
            wake.clear()
            if len(buffer) < self.batch_size:  # give the batch `interval` to fill
                self._wake_at = self.batch_size
                if len(buffer) < self.batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.interval)
                wake.clear()
            self._wake_at = _NEVER  # _flush drains the buffer before we wait again
            try:
                await self._flush()
            except Exception:  # the store is down: keep the records, try again later
                _internal.exception("app log flush failed; retrying")
                await asyncio.sleep(min(1.0, self.interval * 10))

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
        buffer = self._buffer
        take = buffer.popleft
        async with self._flush_lock:
            while buffer:
                rows = [take() for _ in range(min(len(buffer), self.batch_size))]
                try:
                    await self._write(RecordBatch(rows))
                except BaseException:
                    buffer.extendleft(reversed(rows))  # back in front, in order
                    raise
                self.flushes += 1
                self.written += len(rows)

    async def close(self) -> None:
        """Write what is buffered, then stop the writer (errors are logged, not raised)."""
        if self._buffer:
            try:
                await self.flush()
            except Exception:
                _internal.exception("app log: final flush failed; %d records lost", self.pending)
        self._closed_with = self._store()
        task, self._task = self._task, None
        self._wake_at = 1  # the next record tries to start a writer (a reopened app's)
        if task is not None and not task.done():
            if task.get_loop() is asyncio.get_running_loop():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            else:
                with contextlib.suppress(RuntimeError):
                    task.get_loop().call_soon_threadsafe(task.cancel)
