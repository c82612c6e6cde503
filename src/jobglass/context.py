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
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
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
        return self._cancel.is_set()

    def raise_if_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled(self.cancel_reason or "cancel requested")

    def request_cancel(self, reason: str) -> None:
        if not self._cancel.is_set():
            self.cancel_reason = reason
            self._cancel.set()

    def wait_cancelled(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds in a sync job, waking early on cancel."""
        return self._cancel.wait(timeout)
