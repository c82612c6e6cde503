"""The stream hub: one per API server, the single subscriber of the app's event bus.

    app.events (in-process flusher, worker, enqueue; ChangeFollower for other processes)
        -> StreamHub: enrich (job, queue, tenant, seq), drop duplicates, serialize once
        -> its own EventBus: one bounded queue per client (see stream.py)

Duplicates arise when a run executes in this process: the flusher publishes its feedback
directly and the follower sees the same commit again. Log lines are deduplicated by
(run, seq); progress by comparing with what was last delivered; statuses by value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..events import Event, EventBus, Matcher, Subscription
from ..json_codec import compact_encoder
from ..models import RunStatus
from .follow import ORIGIN, ChangeFollower

if TYPE_CHECKING:
    from ..app import JobGlass

log = logging.getLogger("jobglass.web.hub")

LOCAL_WINDOW = 30.0  # seconds a run counts as executed in this process after its last event
JSON_KEY = "_json"  # the hub's serialized text of an event, shared by all its clients


dumps = compact_encoder(default=str, ensure_ascii=False)
"""An event's text, built once per event and shared by all clients."""


@dataclass
class _RunState:
    job: str | None = None
    queue: str | None = None
    tenant: str | None = None
    status: str | None = None
    seq: int = 0
    fingerprint: tuple[Any, ...] | None = None
    local_until: float = 0.0


class StreamHub:
    """Single subscriber of `app.events`; publishes normalized events to its own bus."""

    def __init__(
        self,
        app: JobGlass,
        *,
        client_queue_size: int = 1_000,
        stats_interval: float = 2.0,
        cache_size: int = 20_000,
        follower: ChangeFollower | None = None,
    ) -> None:
        self.app = app
        self.bus = EventBus()
        self.client_queue_size = client_queue_size
        self.stats_interval = stats_interval
        self.cache_size = cache_size
        self.follower = follower or ChangeFollower(app, watched=self._watched)
        self.queue_stats: dict[str, Any] = {}
        self.delivered = 0
        self.dropped_duplicates = 0
        self._runs: OrderedDict[int, _RunState] = OrderedDict()
        self._source: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock: asyncio.Lock | None = None

    def _watched(self) -> bool:
        """Clients, or another in-process subscriber of the app's events (besides us)."""
        return self.bus.subscriber_count > 0 or self.app.events.subscriber_count > 1

    @property
    def started(self) -> bool:
        return self._source is not None

    async def start(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._source is not None:
                return
            await self.app.open()
            self._source = self.app.events.subscribe(maxsize=50_000)
            self._tasks = [
                asyncio.create_task(self._consume(self._source), name="jobglass-stream-hub"),
                asyncio.create_task(self._stats_loop(), name="jobglass-stream-stats"),
            ]
            await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._source is not None:
            self._source.close()
            self._source = None

    def subscribe(self, match: Matcher, maxsize: int | None = None) -> Subscription:
        return self.bus.subscribe(match, maxsize or self.client_queue_size)

    # -- normalizing ------------------------------------------------------------------------

    async def _consume(self, source: Subscription) -> None:
        while True:
            event = await source.get()
            try:
                out = await self.handle(event)
            except Exception:
                log.exception("stream hub: could not handle a %s event", event.get("type"))
                continue
            if out:
                for item in out:
                    item[JSON_KEY] = dumps(item)
                self.delivered += len(out)
                self.bus.publish_many(out)

    async def _state(self, run_id: int, event: Event) -> _RunState | None:
        state = self._runs.get(run_id)
        if state is not None:
            self._runs.move_to_end(run_id)
        elif event.get("jobName") is not None:
            state = _RunState(event.get("jobName"), event.get("queue"), event.get("tenantId"))
            self._remember(run_id, state)
        else:
            run = await self.app.store.get_run(run_id)
            if run is None:
                return None
            state = _RunState(run.job_name, run.queue, run.tenant_id, str(run.status))
            logs = event.get("logs") or []
            # lines after this event's first are still to be delivered (the hub may lag)
            state.seq = int(logs[0]["seq"]) - 1 if logs else 0
            self._remember(run_id, state)
        return state

    def _remember(self, run_id: int, state: _RunState) -> None:
        self._runs[run_id] = state
        while len(self._runs) > self.cache_size:
            self._runs.popitem(last=False)

    async def handle(self, event: Event) -> list[Event]:
        kind = event.get("type")
        if kind in ("overflow", "resync"):
            reason = "hub overflow" if kind == "overflow" else str(event.get("reason", "resync"))
            return [{"type": "resync", "reason": reason}]
        if kind not in ("run", "status", "feedback"):
            return []
        try:
            run_id = int(event["runId"])
        except (KeyError, TypeError, ValueError):
            return []
        state = await self._state(run_id, event)
        if state is None:
            return []
        remote = event.get("origin") == ORIGIN
        now = time.monotonic()
        if remote and now < state.local_until and int(event.get("seq") or 0) <= state.seq:
            self.dropped_duplicates += 1  # already delivered from this process
            return []
        if kind == "feedback":
            return self._feedback(run_id, state, event, remote, now)
        status = str(event.get("status"))
        if status == state.status:
            self.dropped_duplicates += 1
            return []
        state.status = status
        return [self._status(run_id, state)]

    def _status(self, run_id: int, state: _RunState) -> Event:
        return {
            "type": "status",
            "runId": str(run_id),
            "status": state.status,
            "jobName": state.job,
            "queue": state.queue,
            "tenantId": state.tenant,
            "seq": state.seq,
        }

    def _feedback(
        self, run_id: int, state: _RunState, event: Event, remote: bool, now: float
    ) -> list[Event]:
        if not remote:
            state.local_until = now + LOCAL_WINDOW
        logs = [line for line in event.get("logs") or [] if int(line["seq"]) > state.seq]
        if len(logs) < len(event.get("logs") or []):
            self.dropped_duplicates += 1
        if logs:
            state.seq = int(logs[-1]["seq"])  # only delivered lines move the sequence
        status = str(event["status"]) if remote else str(RunStatus.RUNNING)
        outcome = dict(event.get("outcome") or {})
        fingerprint = (
            event.get("stage"),
            event.get("progressCurrent"),
            event.get("progressTotal"),
            event.get("progressMessage"),
            tuple(outcome.items()),
            event.get("hasWarnings"),
            event.get("summary"),
        )
        old = state.fingerprint
        changed = [] if old is None else _changes(old, fingerprint)
        if old is None:
            changed = ["stage", "progress", "outcome"]
        if logs:
            changed.append("logs")
        out: list[Event] = []
        status_changed = status != state.status
        if not changed and not status_changed:
            self.dropped_duplicates += 1
            return out
        state.fingerprint = fingerprint
        total = event.get("progressTotal")
        current = int(event.get("progressCurrent") or 0)
        body = {
            "type": "feedback",
            "runId": str(run_id),
            "seq": state.seq,
            "jobName": state.job,
            "queue": state.queue,
            "tenantId": state.tenant,
            "status": status,
            "stage": event.get("stage"),
            "progressCurrent": current,
            "progressTotal": total,
            "progressPercent": _percent(current, total),
            "progressMessage": event.get("progressMessage"),
            "outcome": outcome,
            "hasWarnings": bool(event.get("hasWarnings")),
            "summary": event.get("summary"),
            "logs": logs,
            "changed": changed,
        }
        if status_changed:
            state.status = status
            status_event = self._status(run_id, state)
            live = status in (RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.RETRYING)
            out = [status_event, body] if live else [body, status_event]
        elif changed:
            out = [body]
        return out

    # -- queue statistics -----------------------------------------------------------------------

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval)
            if not self.bus.subscriber_count:
                continue
            try:
                stats = await self.app.queue_stats()
            except Exception:
                log.warning("stream hub: reading queue stats failed", exc_info=True)
                continue
            self.queue_stats = stats
            event: Event = {"type": "queues", "queues": stats}
            event[JSON_KEY] = dumps(event)
            self.bus.publish(event)


def _changes(old: tuple[Any, ...], new: tuple[Any, ...]) -> list[str]:
    names = ("stage", "progress", "progress", "progress", "outcome", "outcome", "summary")
    out: list[str] = []
    for name, a, b in zip(names, old, new, strict=True):
        if a != b and name not in out:
            out.append(name)
    return out


def _percent(current: int, total: Any) -> int | None:
    if not isinstance(total, int) or total <= 0:
        return None
    return max(0, min(100, (min(current, total) * 100) // total))
