"""The live stream: WebSocket `/api/admin/stream` and its SSE fallback `/api/admin/stream/sse`.

Each client has a filter (runId, job, queue, tenant, level), a bounded queue on the hub's bus
and, for a one-run stream, a replay position (`seq`). Connecting with `?runId=X&after=N`
replays the run's log lines after N from the store, then continues live, with no gap and no
duplicate. A client that falls behind overflows its queue and gets a `resync` (fresh
snapshot, and for one-run streams the missed lines) instead of slowing anyone else.
See docs/api.md for the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi.responses import StreamingResponse

from ..errors import InvalidInput, NotFound
from ..events import Event, Subscription
from ..models import LEVEL_RANK
from .auth import Authenticator, AuthError, Identity, credentials
from .hub import JSON_KEY, StreamHub, dumps

if TYPE_CHECKING:
    from ..app import JobGlass

log = logging.getLogger("jobglass.web.stream")

T = TypeVar("T")
PROTOCOL = 1
REPLAY_PAGE = 1_000
SNAPSHOT_RUNS = 50
SSE_KEEPALIVE = 15.0


async def shielded(read: Awaitable[T]) -> T:
    """A store read that a client going away must not cancel midway.

    Clients disconnect at any moment, which cancels their session. A cancellation that hits a
    task waiting for a pooled PostgreSQL connection can be lost inside psycopg_pool, and the
    pool then stalls other requests until its timeout; so the read finishes on its own.
    """
    task = asyncio.ensure_future(read)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned read's error is not "never retrieved"


@dataclass(frozen=True, slots=True)
class Frame:
    """One message as sent: JSON text, and the run sequence it carries (SSE `id:`)."""

    text: str
    seq: int | None = None

    @classmethod
    def of(cls, message: Mapping[str, Any]) -> Frame:
        seq = message.get("seq")
        return cls(dumps(message), seq if isinstance(seq, int) else None)

    @classmethod
    def cached(cls, event: Event) -> Frame:
        """The hub's text of an event, shared by every client that gets it unchanged."""
        text = event.get(JSON_KEY)
        if not isinstance(text, str):
            return cls.of({k: v for k, v in event.items() if k != JSON_KEY})
        seq = event.get("seq")
        return cls(text, seq if isinstance(seq, int) else None)


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
        after = _int_param("after", text("after") or last_event_id or None, minimum=0)
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
        return kind in ("queues", "resync")

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
    if not minimum <= number <= 2**63 - 1:
        raise InvalidInput(f"query parameter {name!r} must be an integer >= {minimum}")
    return number


class StreamSession:
    """What one client sees: its filter, its bounded queue, its replay position."""

    def __init__(
        self, hub: StreamHub, flt: StreamFilter, identity: Identity, queue_size: int | None = None
    ) -> None:
        self.hub = hub
        self.app: JobGlass = hub.app
        self.filter = flt
        self.identity = identity
        self.queue_size = queue_size
        self.sent_seq = flt.after or 0  # one-run streams: highest log seq delivered
        self.resyncs = 0
        self._sub: Subscription | None = None
        self._min_rank = LEVEL_RANK[flt.level] if flt.level else 0

    async def open(self) -> AsyncIterator[Frame]:
        """Subscribe first (so nothing falls in between), then snapshot and replay."""
        await self.hub.start()
        self._sub = self.hub.subscribe(self.filter.matches, self.queue_size)
        yield Frame.of(
            {
                "type": "hello",
                "protocol": PROTOCOL,
                "role": self.identity.role,
                "filters": self.filter.to_json(),
            }
        )
        async for frame in self._snapshot("snapshot"):
            yield frame

    def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    async def _snapshot(self, kind: str, reason: str | None = None) -> AsyncIterator[Frame]:
        flt = self.filter
        head: dict[str, Any] = {"type": kind}
        if reason:
            head["reason"] = reason
        if flt.run_id is None:
            runs = await shielded(
                self.app.list_runs(
                    job_name=flt.job, queue=flt.queue, tenant_id=flt.tenant, limit=SNAPSHOT_RUNS
                )
            )
            head["runs"] = [run.to_json() for run in runs]
            stats = self.hub.queue_stats or await shielded(self.app.queue_stats())
            head["queues"] = self._queues(stats)
            yield Frame.of(head)
            return
        replay = flt.after is not None or kind != "snapshot"
        if replay:  # what was missed first; the snapshot after it means "caught up"
            async for frame in self._replay(flt.run_id):
                yield frame
        run = await shielded(self.app.get_run(flt.run_id))
        if replay and run.log_seq > self.sent_seq:
            # lines committed between the replay and this read (a run's lines and its log_seq
            # commit together): send them too, so the snapshot never runs ahead of the lines
            async for frame in self._replay(flt.run_id):
                yield frame
        if not replay:
            self.sent_seq = run.log_seq  # no replay asked for: live lines after the snapshot
        head["run"] = run.to_json()
        head["seq"] = run.log_seq
        yield Frame.of(head)

    async def _replay(self, run_id: int) -> AsyncIterator[Frame]:
        """Log lines after `sent_seq`, page by page, so memory stays bounded."""
        while True:
            page = await shielded(
                self.app.store.get_logs(
                    run_id, min_level=self.filter.level, limit=REPLAY_PAGE, after=self.sent_seq
                )
            )
            if not page:
                return
            self.sent_seq = page[-1].seq
            yield Frame.of(
                {
                    "type": "logs",
                    "runId": str(run_id),
                    "seq": self.sent_seq,
                    "logs": [line.to_json() for line in page],
                    "replay": True,
                }
            )
            if len(page) < REPLAY_PAGE:
                return

    async def next_frames(self, idle: float | None = None) -> AsyncIterator[Frame]:
        """Wait for the next event; yield this client's frames for it (maybe none)."""
        assert self._sub is not None, "open() first"
        event = await self._sub.get(idle)
        kind = event.get("type")
        if kind in ("overflow", "resync"):
            self.resyncs += 1
            reason = "overflow" if kind == "overflow" else str(event.get("reason", "resync"))
            async for frame in self._snapshot("resync", reason):
                yield frame
        elif kind == "queues" and self.filter.queue is not None:
            yield Frame.of({"type": "queues", "queues": self._queues(event.get("queues") or {})})
        elif kind == "feedback":
            trimmed = self._feedback(event)
            if trimmed is not None:
                yield trimmed
        else:
            yield Frame.cached(event)

    def _queues(self, stats: dict[str, Any]) -> dict[str, Any]:
        if self.filter.queue is None:
            return stats
        return {k: v for k, v in stats.items() if k == self.filter.queue}

    def _feedback(self, event: Event) -> Frame | None:
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
            return Frame.cached(event)
        changed = [c for c in event.get("changed") or [] if c != "logs" or kept]
        if not changed:
            return None
        message = {k: v for k, v in event.items() if k != JSON_KEY}
        message["logs"] = kept
        message["changed"] = changed
        return Frame.of(message)


async def pump(session: StreamSession, idle: float | None = None) -> AsyncIterator[Frame | None]:
    """All frames of a session; `None` after `idle` seconds without one (for keep-alives)."""
    try:
        async for frame in session.open():
            yield frame
        while True:
            try:
                async for frame in session.next_frames(idle):
                    yield frame
            except TimeoutError:
                yield None
    finally:
        session.close()


# -- transports -------------------------------------------------------------------------------


def _close_reason(text: str) -> str:
    data = text.encode("utf-8")[:120]
    return data.decode("utf-8", "ignore")


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Accept only to close with an application code (browsers see it; nothing else is sent)."""
    await websocket.accept()
    await websocket.close(code=code, reason=_close_reason(reason))


def add_stream_routes(
    api: FastAPI,
    hub: StreamHub,
    authenticator: Authenticator,
    base: str,
    viewer: Callable[..., Any],
    responses: dict[int | str, dict[str, Any]],
) -> None:
    """Register the WebSocket and SSE routes on `api` under `base` (`.../api/admin`)."""

    @api.websocket(base + "/stream")
    async def stream_ws(websocket: WebSocket) -> None:
        token, api_key = credentials(websocket.headers, websocket.query_params)
        try:
            identity = authenticator.authenticate(token, api_key)
            flt = StreamFilter.parse(websocket.query_params)
            if flt.run_id is not None:
                await shielded(hub.app.get_run(flt.run_id))
        except AuthError as err:
            await _refuse(websocket, 4401 if err.status == 401 else 4403, err.message)
            return
        except InvalidInput as err:
            await _refuse(websocket, 4400, str(err))
            return
        except NotFound as err:
            await _refuse(websocket, 4404, str(err))
            return
        await websocket.accept()
        await _serve_socket(websocket, StreamSession(hub, flt, identity))

    @api.get(
        base + "/stream/sse",
        tags=["stream"],
        summary="Live events as Server-Sent Events (WebSocket fallback)",
        response_class=StreamingResponse,
        responses={
            **responses,
            200: {
                "description": "An endless `text/event-stream`; see docs/api.md",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
        },
    )
    async def stream_sse(
        request: Request,
        identity: Identity = Depends(viewer),
        runId: str | None = Query(None, description="only this run (enables `after`)"),
        job: str | None = Query(None, max_length=256),
        queue: str | None = Query(None, max_length=256),
        tenant: str | None = Query(None, max_length=256),
        level: str | None = Query(None, description="log level threshold"),
        after: str | None = Query(None, description="replay log lines after this seq"),
        token: str | None = Query(None, description="credentials, for EventSource clients"),
    ) -> StreamingResponse:
        flt = StreamFilter.parse(request.query_params, request.headers.get("last-event-id"))
        if flt.run_id is not None:
            await shielded(hub.app.get_run(flt.run_id))
        session = StreamSession(hub, flt, identity)

        async def body() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            async for frame in pump(session, SSE_KEEPALIVE):
                if frame is None:
                    yield ": keep-alive\n\n"
                elif flt.run_id is not None and frame.seq is not None:
                    yield f"id: {frame.seq}\ndata: {frame.text}\n\n"
                else:
                    yield f"data: {frame.text}\n\n"

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


async def _serve_socket(websocket: WebSocket, session: StreamSession) -> None:
    lock = asyncio.Lock()

    async def send() -> None:
        async for frame in pump(session):
            if frame is not None:
                async with lock:
                    await websocket.send_text(frame.text)

    async def receive() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text") or ""
            if '"ping"' in text:
                async with lock:
                    await websocket.send_text('{"type":"pong"}')

    tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            err = task.exception()
            if isinstance(err, NotFound):
                with contextlib.suppress(Exception):
                    await websocket.close(code=4404, reason=_close_reason(str(err)))
            elif err is not None and not _is_disconnect(err):
                log.error("stream: client session failed", exc_info=err)
                with contextlib.suppress(Exception):
                    await websocket.close(code=1011, reason="internal error")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        session.close()
        if websocket.application_state.name == "CONNECTED":
            with contextlib.suppress(Exception):
                await websocket.close()


def _is_disconnect(err: BaseException) -> bool:
    name = type(err).__name__
    return isinstance(err, OSError | ConnectionError) or "Disconnect" in name or "Closed" in name
