"""The live stream: one hub per API server, many WebSocket / SSE clients.

    app.events (in-process flusher, worker, enqueue; ChangeFollower for other processes)
        -> StreamHub: enrich (job, queue, tenant, seq), drop duplicates, fan out
        -> one bounded queue per client -> its socket

A client that cannot keep up loses its queue (EventBus overflow) and gets a `resync`: fresh
snapshots, and for a one-run stream the log lines it missed, read from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound
from ..events import Event, EventBus, Subscription
from ..models import LEVEL_RANK, RunStatus
from .follow import ORIGIN, ChangeFollower

if TYPE_CHECKING:
    from ..app import JobGlass
    from .auth import Identity

log = logging.getLogger("jobglass.web.stream")

PROTOCOL = 1
LOCAL_WINDOW = 30.0  # seconds a run counts as executed in this process after its last event
REPLAY_PAGE = 1_000
SNAPSHOT_RUNS = 50
JSON_KEY = "_json"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _text(event: Event) -> str:
    """Serialize once per event for every client that receives it unchanged."""
    cached = event.get(JSON_KEY)
    if isinstance(cached, str):
        return cached
    return dumps({k: v for k, v in event.items() if k != JSON_KEY})


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
        self.follower = follower or ChangeFollower(app)
        self.queue_stats: dict[str, Any] = {}
        self.delivered = 0
        self.dropped_duplicates = 0
        self._runs: OrderedDict[int, _RunState] = OrderedDict()
        self._source: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock: asyncio.Lock | None = None

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

    def subscribe(self, match: Any, maxsize: int | None = None) -> Subscription:
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
            state.seq = int(logs[0]["seq"]) - 1 if logs else run.log_seq
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
        if remote:
            state.seq = max(state.seq, int(event.get("seq") or 0))
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
            state.seq = int(logs[-1]["seq"])
        if remote:
            state.seq = max(state.seq, int(event.get("seq") or 0))
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


# -- one client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamFilter:
    run_id: int | None = None
    job: str | None = None
    queue: str | None = None
    tenant: str | None = None
    level: str | None = None
    after: int | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str], last_event_id: str | None = None) -> StreamFilter:
        def text(name: str) -> str | None:
            value = query.get(name)
            if value is None or value == "":
                return None
            if len(value) > 256 or "\x00" in value:
                raise InvalidInput(f"query parameter {name!r}: at most 256 characters, no NUL")
            return value

        run_id = _int_param("runId", text("runId"), minimum=1)
        level = text("level")
        if level is not None and level not in LEVEL_RANK:
            raise InvalidInput(f"query parameter 'level': use one of {', '.join(LEVEL_RANK)}")
        after = _int_param("after", text("after") or last_event_id, minimum=0)
        if after is not None and run_id is None:
            raise InvalidInput("query parameter 'after' needs 'runId' (sequences are per run)")
        return cls(run_id, text("job"), text("queue"), text("tenant"), level, after)

    def matches(self, event: Event) -> bool:
        kind = event.get("type")
        if kind in ("status", "feedback"):
            if self.run_id is not None and event.get("runId") != str(self.run_id):
                return False
            if self.job is not None and event.get("jobName") != self.job:
                return False
            if self.queue is not None and event.get("queue") != self.queue:
                return False
            return self.tenant is None or event.get("tenantId") == self.tenant
        return kind in ("queues", "resync", "overflow")

    def to_json(self) -> dict[str, Any]:
        return {
            "runId": None if self.run_id is None else str(self.run_id),
            "job": self.job,
            "queue": self.queue,
            "tenant": self.tenant,
            "level": self.level,
            "after": self.after,
        }


def _int_param(name: str, value: str | None, minimum: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"query parameter {name!r} must be an integer") from None
    if number < minimum or number > 2**63 - 1:
        raise InvalidInput(f"query parameter {name!r} must be >= {minimum}")
    return number


Outgoing = dict[str, Any] | str  # a message, or the hub's already-serialized text of one


class StreamSession:
    """What one client sees: its filter, its bounded queue, its replay position."""

    def __init__(self, hub: StreamHub, flt: StreamFilter, identity: Identity) -> None:
        self.hub = hub
        self.app = hub.app
        self.filter = flt
        self.identity = identity
        self.sent_seq = flt.after or 0  # one-run streams: highest log seq delivered
        self.resyncs = 0
        self._sub: Subscription | None = None
        self._min_rank = LEVEL_RANK[flt.level] if flt.level else 0

    async def open(self) -> AsyncIterator[Outgoing]:
        """Subscribe first (so nothing falls between), then the snapshot and the replay."""
        await self.hub.start()
        self._sub = self.hub.subscribe(self.filter.matches)
        yield {
            "type": "hello",
            "protocol": PROTOCOL,
            "role": self.identity.role,
            "filters": self.filter.to_json(),
        }
        async for message in self._snapshot("snapshot"):
            yield message

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    async def _snapshot(self, kind: str, reason: str | None = None) -> AsyncIterator[Outgoing]:
        flt = self.filter
        head: dict[str, Any] = {"type": kind}
        if reason:
            head["reason"] = reason
        if flt.run_id is None:
            runs = await self.app.list_runs(
                job_name=flt.job, queue=flt.queue, tenant_id=flt.tenant, limit=SNAPSHOT_RUNS
            )
            head["runs"] = [run.to_json() for run in runs]
            head["queues"] = self._queues(self.hub.queue_stats or await self.app.queue_stats())
            yield head
            return
        run = await self.app.get_run(flt.run_id)
        head["run"] = run.to_json()
        head["seq"] = run.log_seq
        yield head
        if flt.after is None and kind == "snapshot":
            self.sent_seq = run.log_seq  # no replay asked: live lines after the snapshot
            return
        async for message in self._replay(run.id):
            yield message

    async def _replay(self, run_id: int) -> AsyncIterator[Outgoing]:
        """Log lines after `sent_seq`, page by page (memory stays bounded)."""
        while True:
            page = await self.app.store.get_logs(
                run_id, min_level=self.filter.level, limit=REPLAY_PAGE, after=self.sent_seq
            )
            if not page:
                return
            self.sent_seq = page[-1].seq
            yield {
                "type": "logs",
                "runId": str(run_id),
                "seq": self.sent_seq,
                "logs": [line.to_json() for line in page],
                "replay": True,
            }
            if len(page) < REPLAY_PAGE:
                return

    async def next_messages(self, timeout: float | None = None) -> AsyncIterator[Outgoing]:
        """Wait for the next event and turn it into this client's messages (maybe none)."""
        assert self._sub is not None, "open() first"
        event = await self._sub.get(timeout)
        kind = event.get("type")
        if kind in ("overflow", "resync"):
            self.resyncs += 1
            reason = "overflow" if kind == "overflow" else str(event.get("reason", "resync"))
            async for message in self._snapshot("resync", reason):
                yield message
            return
        if kind == "queues":
            if self.filter.queue is None:
                yield _text(event)
            else:
                stats = event.get("queues") or {}
                yield {"type": "queues", "queues": self._queues(stats)}
            return
        if kind == "feedback":
            message = self._feedback(event)
            if message is not None:
                yield message
            return
        yield _text(event)

    def _queues(self, stats: dict[str, Any]) -> dict[str, Any]:
        if self.filter.queue is None:
            return stats
        return {k: v for k, v in stats.items() if k == self.filter.queue}

    def _feedback(self, event: Event) -> Outgoing | None:
        logs: list[dict[str, Any]] = event.get("logs") or []
        one_run = self.filter.run_id is not None
        kept = logs
        if one_run:
            kept = [line for line in kept if int(line["seq"]) > self.sent_seq]
        if self._min_rank:
            kept = [line for line in kept if LEVEL_RANK.get(line["level"], 0) >= self._min_rank]
        if one_run:
            self.sent_seq = max(self.sent_seq, int(event.get("seq") or 0))
        if len(kept) == len(logs):
            return _text(event)
        changed = [c for c in event.get("changed") or [] if c != "logs" or kept]
        if not changed:
            return None
        message = {k: v for k, v in event.items() if k != JSON_KEY}
        message["logs"] = kept
        message["changed"] = changed
        return message


def encode(message: Outgoing) -> str:
    return message if isinstance(message, str) else dumps(message)


def seq_of(message: Outgoing) -> int | None:
    """The run sequence a message carries (SSE `id:`), without decoding cached text twice."""
    data = json.loads(message) if isinstance(message, str) else message
    seq = data.get("seq") if isinstance(data, dict) else None
    return seq if isinstance(seq, int) else None


async def pump(session: StreamSession, timeout: float | None = None) -> AsyncIterator[Outgoing]:
    """Every message for a session, forever; a `None`-free stream for the transports."""
    try:
        async for message in session.open():
            yield message
        while True:
            try:
                async for message in session.next_messages(timeout):
                    yield message
            except TimeoutError:
                yield ""  # idle: the transport may send a keep-alive
    finally:
        session.close()


__all__ = [
    "NotFound",
    "StreamFilter",
    "StreamHub",
    "StreamSession",
    "encode",
    "pump",
    "seq_of",
]


@dataclass
class _Unused:  # keeps `field` imported for dataclass defaults in future fields
    items: list[Any] = field(default_factory=list)
