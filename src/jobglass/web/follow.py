"""Follow changes written by other processes and republish them on the app's event bus.

PostgreSQL pushes: the flusher's transaction sends `NOTIFY jobglass_events` with
`[{"r": run_id, "k": "feedback"|"status", "f": first_seq, "t": last_seq}, ...]`.
SQLite cannot push: the follower reads the `events` outbox after a cursor, every 50 ms, and
sooner when the database's WAL file changes (a `stat`, not a query).

Each change is fetched once (the run, and its new log rows) and published once, in the same
shapes the in-process flusher uses, plus `jobName`, `queue`, `tenantId`, `status`, `seq` and
`"origin": "store"`; the stream layer fans it out and drops what was already seen in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models import LogLine, Run

if TYPE_CHECKING:
    from ..app import JobGlass
    from ..stores.base import Store

log = logging.getLogger("jobglass.web.follow")

CHANNEL = "jobglass_events"
RECONNECTED = "jobglass_reconnected"  # the store's listener lost its connection and is back
LOG_PAGE = 5_000
SEEN_RUNS = 4_096
ORIGIN = "store"


@dataclass
class _Pending:
    kinds: list[str] = field(default_factory=list)
    low: int = 0
    high: int = 0

    def add(self, kind: str, first: int, last: int) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)
        if last > 0:
            self.low = first if self.low == 0 else min(self.low, first)
            self.high = max(self.high, last)


class ChangeFollower:
    """One per API server: one listener (or poller), many subscribers downstream."""

    def __init__(
        self,
        app: JobGlass,
        *,
        poll_interval: float = 0.05,
        fast_check: float = 0.002,
        watched: Callable[[], bool] | None = None,
    ) -> None:
        self.app = app
        self.poll_interval = poll_interval
        self.fast_check = fast_check
        #: SQLite: check the WAL file every `fast_check` s only while someone is watching
        self.watched = watched or (lambda: True)
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: list[tuple[int, str, int, int]] = []
        self._wake = asyncio.Event()
        self.changes = 0  # outbox entries / notification items seen
        self.fetches = 0  # run reads done (one per changed run per batch, never per client)
        self.published = 0
        #: per run, the highest log seq published (the most recent `SEEN_RUNS` runs)
        self._seen: OrderedDict[int, int] = OrderedDict()

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def start(self) -> None:
        if self.running:
            return
        store = self.app.store
        if store.pushes_events:
            self._tasks = [
                asyncio.create_task(self._listen(store), name="jobglass-follow-listen"),
                asyncio.create_task(self._drain_inbox(), name="jobglass-follow-fetch"),
            ]
        else:
            cursor = await store.last_event_id()
            self._tasks = [
                asyncio.create_task(self._poll(store, cursor), name="jobglass-follow-poll")
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- PostgreSQL: LISTEN ------------------------------------------------------------------

    async def _listen(self, store: Store) -> None:
        loop = asyncio.get_running_loop()

        def handler(channel: str, payload: str) -> None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                self._notified(channel, payload)
            else:
                loop.call_soon_threadsafe(self._notified, channel, payload)

        delay = 0.1
        while True:
            started = time.monotonic()
            try:
                await store.listen(handler)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("listening for changes failed; reconnecting", exc_info=True)
            # the listener ended: notifications may have been missed, so clients resync
            self.app.events.publish({"type": "resync", "reason": "listener restarted"})
            delay = 0.1 if time.monotonic() - started > 10 else min(5.0, delay * 2)
            await asyncio.sleep(delay)

    def _notified(self, channel: str, payload: str) -> None:
        if channel == RECONNECTED:
            self.app.events.publish({"type": "resync", "reason": "listener reconnected"})
            return
        if channel != CHANNEL:
            return
        items = parse_payload(payload)
        if items:
            self._inbox.extend(items)
            self._wake.set()

    async def _drain_inbox(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            items, self._inbox = self._inbox, []
            if items:
                try:
                    await self.process(items)
                except Exception:
                    log.exception("publishing followed changes failed")

    # -- SQLite: outbox cursor ----------------------------------------------------------------

    async def _poll(self, store: Store, cursor: int) -> None:
        watch = _watched_files(store)
        last_sig = _signature(watch)
        next_poll = 0.0
        while True:
            now = time.monotonic()
            sig = _signature(watch)
            if sig != last_sig or now >= next_poll:
                last_sig = sig
                next_poll = now + self.poll_interval
                try:
                    cursor = await self._read_outbox(store, cursor)
                except Exception:
                    log.warning("reading the change outbox failed; retrying", exc_info=True)
                    await asyncio.sleep(self.poll_interval)
            fast = watch and self.watched()
            await asyncio.sleep(self.fast_check if fast else self.poll_interval)

    async def _read_outbox(self, store: Store, cursor: int) -> int:
        while True:
            events = await store.events_after(cursor, 500)
            if not events:
                return cursor
            cursor = events[-1].id
            await self.process((e.run_id, e.kind, e.log_from, e.log_to) for e in events)
            if len(events) < 500:
                return cursor

    # -- shared: fetch once, publish once ----------------------------------------------------

    async def process(self, items: Iterable[tuple[int, str, int, int]]) -> None:
        """Group changes by run (order kept), read each run and its new rows once, publish."""
        pending: dict[int, _Pending] = {}
        for run_id, kind, first, last in items:
            self.changes += 1
            pending.setdefault(run_id, _Pending()).add(kind, first, last)
        store = self.app.store
        for run_id, change in pending.items():
            run = await store.get_run(run_id)
            self.fetches += 1
            if run is None:
                continue  # deleted meanwhile
            seen = self._seen.pop(run_id, 0)
            kinds = change.kinds
            logs: list[LogLine] = []
            if run.log_seq > seen:
                # Every line up to the run's own seq, so the events agree with the run as read
                # now: also for a status change read after the run went on (a fast run can be
                # SUCCESS by the time its claim's change is read, with its lines' change still
                # unread); the later changes then carry nothing new.
                low = max(change.low, seen + 1) if change.high > 0 else seen + 1
                logs = await _fetch_logs(store, run_id, low, run.log_seq)
                if logs and "feedback" not in kinds:
                    kinds = ["feedback", *kinds]
            self._seen[run_id] = max(seen, logs[-1].seq if logs else 0)
            while len(self._seen) > SEEN_RUNS:
                self._seen.popitem(last=False)
            events: list[dict[str, Any]] = []
            # both events carry the run as it is now: lines first, then the (latest) status, so
            # a client never sees a run finish before the lines that led there
            for kind in sorted(kinds, key=lambda k: k != "feedback"):
                if kind == "feedback":
                    events.append(feedback_event(run, logs))
                else:
                    events.append(status_event(run))
            if events:
                self.published += len(events)
                self.app.events.publish_many(events)


async def _fetch_logs(store: Store, run_id: int, low: int, high: int) -> list[LogLine]:
    out: list[LogLine] = []
    after = max(0, low - 1)
    while after < high:
        page = await store.get_logs(
            run_id, min_level=None, limit=min(LOG_PAGE, high - after), after=after
        )
        if not page:
            break
        out.extend(line for line in page if line.seq <= high)
        after = page[-1].seq
    return out


def _base(run: Run) -> dict[str, Any]:
    return {
        "runId": str(run.id),
        "status": str(run.status),
        "jobName": run.job_name,
        "queue": run.queue,
        "tenantId": run.tenant_id,
        "seq": run.log_seq,
        "cancelRequested": run.cancel_requested,
        "origin": ORIGIN,
    }


def feedback_event(run: Run, logs: list[LogLine]) -> dict[str, Any]:
    """The in-process flusher's `feedback` shape, from what the store now holds."""
    return {
        "type": "feedback",
        **_base(run),
        "stage": run.stage,
        "progressCurrent": run.progress_current,
        "progressTotal": run.progress_total,
        "progressMessage": run.progress_message,
        "outcome": dict(run.outcome),
        "hasWarnings": run.has_warnings,
        "summary": run.summary,
        "logs": [line.to_json() for line in logs],
    }


def status_event(run: Run) -> dict[str, Any]:
    return {"type": "status", **_base(run)}


def parse_payload(payload: str) -> list[tuple[int, str, int, int]]:
    """`[{"r": 1, "k": "feedback", "f": 3, "t": 9}, ...]`; malformed items are skipped."""
    try:
        data = json.loads(payload)
    except ValueError:
        log.warning("ignoring a malformed change notification")
        return []
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return []
    out = []
    for item in data:
        if not isinstance(item, dict):
            continue
        try:
            run_id = int(item["r"])
            kind = str(item.get("k") or "feedback")
            first = int(item.get("f") or 0)
            last = int(item.get("t") or 0)
        except (KeyError, TypeError, ValueError):
            continue
        out.append((run_id, kind, first, last))
    return out


def _watched_files(store: Store) -> list[str]:
    """SQLite's database and WAL files: a change of either means a commit happened."""
    path = getattr(store, "path", None)
    if not isinstance(path, str) or path in ("", ":memory:") or path.startswith("file:"):
        return []
    return [path + "-wal", path]


def _signature(paths: list[str]) -> tuple[tuple[int, int, int], ...]:
    sig = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            sig.append((0, 0, 0))
            continue
        sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(sig)
