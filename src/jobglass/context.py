"""JobContext: what a running job knows about itself, passed as its first argument."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import JobCancelled
from .feedback import JobLogger

if TYPE_CHECKING:
    from .app import JobGlass

#: guards the lazy creation of a context's cancel event (rare: sync jobs that sleep on it)
_EVENT_LOCK = threading.Lock()


@dataclass
class JobContext:
    """Seed names: `jobRunId` is `run_id`, `jobName` is `job_name`."""

    run_id: int
    job_name: str
    log: JobLogger
    attempt: int = 1
    max_attempts: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    trigger: str = "MANUAL"
    scope: str = "system"
    algorithm_version: str | None = None
    correlation_id: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    job_id: str | None = None
    fire_time: datetime | None = None
    next_fire_time: datetime | None = None
    app: JobGlass | None = None
    _cancelled: bool = field(default=False, repr=False)
    #: made by the first `wait_cancelled` (a sync job's sleep); most runs never need one
    _cancel_event: threading.Event | None = field(default=None, repr=False)
    cancel_reason: str | None = None
    #: Propagation headers (W3C `traceparent`, ...) stored when the run was enqueued.
    trace_context: dict[str, str] = field(default_factory=dict)

    @property
    def job_run_id(self) -> int:
        return self.run_id

    @property
    def logger(self) -> JobLogger:
        return self.log

    @property
    def cancelled(self) -> bool:
        """True once a cancel was requested, the timeout passed, or shutdown asked to stop."""
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        if self._cancelled:
            raise JobCancelled(self.cancel_reason or "cancel requested")

    def request_cancel(self, reason: str) -> None:
        if not self._cancelled:
            self.cancel_reason = reason
            self._mark_cancelled()

    def _mark_cancelled(self) -> None:
        self._cancelled = True  # before the lock: a waiter arriving later sees it
        with _EVENT_LOCK:
            event = self._cancel_event
        if event is not None:
            event.set()

    def wait_cancelled(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds in a sync job, waking early on cancel."""
        with _EVENT_LOCK:
            event = self._cancel_event
            if event is None:
                event = self._cancel_event = threading.Event()
                if self._cancelled:
                    event.set()
        return event.wait(timeout)
