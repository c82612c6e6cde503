"""The stream handler `configure_logging` installs: writes at once, or a loop turn's lines at
once (batched).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import weakref
from typing import IO

from .log_format import ContextFilter, JsonFormatter, TextFormatter

__all__ = ["StreamHandler"]

_running_loop = asyncio._get_running_loop


class StreamHandler(logging.StreamHandler[IO[str]]):
    """A `StreamHandler` whose `emit` flushes the stream directly (`handle` already holds
    the lock that `StreamHandler.flush` takes again), and that can batch.

    Batched (`configure_logging(batched=True)`, what the long-running commands use), the
    lines logged on an event loop's thread are written once per loop turn: a worker
    finishing a hundred runs in a turn makes one `write` for their two hundred lines, not
    two hundred (a line's write and flush to a pipe cost more than making the line). A
    daemon thread writes lines that waited `SWEEP` seconds (a loop blocked by a job), a
    WARNING or worse and every line from another thread are written at once, after the
    waiting ones, and `flush()` (also at exit, by `logging.shutdown`) writes them all.
    """

    #: seconds a batched line may wait when its event loop is blocked
    SWEEP = 0.1

    def __init__(self, stream: IO[str], *, batched: bool = False) -> None:
        super().__init__(stream)
        self.batched = batched
        self._pending: list[str] = []
        self._since = 0.0
        self._waiting = threading.Event()  # set while lines wait: the sweeper's cue
        self._sweeper_pid = 0
        _BATCHING.add(self)

    def _forked(self) -> None:
        """In a forked child: the parent writes its own waiting lines; no sweeper runs here."""
        self._pending = []
        self._waiting = threading.Event()
        self._sweeper_pid = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._deliver(self.format(record) + self.terminator, record.levelno)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def direct(self) -> TextFormatter | JsonFormatter | None:
        """This handler's formatter when a line can skip the LogRecord: it has no filter
        but its `ContextFilter` and one of our formatters, unchanged."""
        formatter = self.formatter
        if self.level > logging.INFO or len(self.filters) != 1:
            return None
        if type(self.filters[0]) is not ContextFilter:
            return None
        if type(formatter) is JsonFormatter:
            return formatter
        if type(formatter) is TextFormatter and formatter.plain():
            return formatter
        return None

    def emit_line(self, line: str, levelno: int) -> None:
        """`emit` for a line made without a record (`_emit`'s direct path); a batched line
        of a loop's turn joins the batch straight away (two per run: every step counts)."""
        lock = self.lock
        assert lock is not None  # made by `Handler.__init__`
        lock.acquire()
        try:
            pending = self._pending
            if pending and levelno < logging.WARNING and _running_loop() is not None:
                pending.append(line + self.terminator)  # the turn's flush is scheduled
                if len(pending) >= 1024:
                    self._write_reporting()
            else:
                self._deliver(line + self.terminator, levelno)
        except RecursionError:
            raise
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": line}))
        finally:
            lock.release()

    def _deliver(self, line: str, levelno: int) -> None:
        """Write `line`, or add it to this loop turn's batch; the caller holds the lock."""
        loop = _running_loop() if self.batched else None
        if loop is None or levelno >= logging.WARNING:
            if self._pending:
                self._write_pending()
            stream = self.stream
            stream.write(line)
            stream.flush()
            return
        pending = self._pending
        pending.append(line)
        if len(pending) == 1:
            self._since = time.monotonic()
            loop.call_soon(self._flush_turn)
            if self._sweeper_pid != os.getpid():
                self._start_sweeper()
            self._waiting.set()
        elif len(pending) >= 1024:
            self._write_pending()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()
            super().flush()

    def _write_pending(self) -> None:
        """Write the waiting lines; the caller holds the lock."""
        lines = self._pending
        if lines:
            self._pending = []
            stream = self.stream
            stream.write("".join(lines))
            stream.flush()

    def _flush_turn(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_reporting()

    def _write_reporting(self) -> None:
        """`_write_pending`, reporting a failure as `emit` does (never raising)."""
        try:
            self._write_pending()
        except Exception:
            self._pending = []
            self.handleError(logging.makeLogRecord({"msg": "batched log lines"}))

    def _start_sweeper(self) -> None:
        self._sweeper_pid = os.getpid()  # a forked child starts its own
        threading.Thread(target=self._sweep, name="jobglass-log-sweeper", daemon=True).start()

    def _sweep(self) -> None:
        while True:
            self._waiting.wait()
            time.sleep(self.SWEEP)
            with self.lock:  # type: ignore[union-attr]
                if self._pending and time.monotonic() - self._since >= self.SWEEP:
                    self._write_reporting()
                if not self._pending:
                    self._waiting.clear()


_BATCHING: weakref.WeakSet[StreamHandler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handler in list(_BATCHING):
        handler._forked()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
