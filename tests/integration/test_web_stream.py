"""The live stream over real WebSocket/SSE connections, worker in another process, both backends."""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect

Message = dict[str, Any]


async def read_until(
    ws: ClientConnection, done: Any, within: float = 30.0, into: list[Message] | None = None
) -> list[Message]:
    """Collect decoded messages until `done(message)` is true (that message included)."""
    out: list[Message] = [] if into is None else into
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {len(out)} messages: {out[-3:]}")
        message = json.loads(await asyncio.wait_for(ws.recv(), left))
        message["_at"] = time.time()
        out.append(message)
        if done(message):
            return out


FINAL = ("SUCCESS", "FAILED", "CANCELLED")


def finished(run_id: str) -> Any:
    """A final status event, or a snapshot/resync showing the run already finished."""

    def check(message: Message) -> bool:
        if message.get("type") in ("snapshot", "resync"):
            runs = [message["run"]] if "run" in message else message.get("runs", [])
            return any(run["id"] == run_id and run["status"] in FINAL for run in runs)
        return (
            message.get("type") == "status"
            and message.get("runId") == run_id
            and message.get("status") in FINAL
        )

    return check


def log_seqs(messages: list[Message], run_id: str | None = None) -> list[int]:
    seqs = []
    for message in messages:
        if message.get("type") in ("feedback", "logs") and (
            run_id is None or message.get("runId") == run_id
        ):
            seqs.extend(int(line["seq"]) for line in message["logs"])
    return seqs


def run_events(messages: list[Message], run_id: str) -> list[tuple[Any, ...]]:
    return [
        (
            m["type"], m.get("status"), m.get("seq"), m.get("stage"), m.get("progressCurrent"),
            tuple(line["seq"] for line in m.get("logs", [])),
        )
        for m in messages
        if m.get("runId") == run_id and m["type"] in ("status", "feedback")
    ]


async def all_log_ids(client: httpx.AsyncClient, run_id: str) -> list[int]:
    body = (await client.get(f"/jobs/{run_id}/logs", params={"limit": 10_000})).json()
    return [int(row["id"]) for row in body["logs"]]


async def test_ten_clients_see_the_same_ordered_updates(
    web_stack: Any, aclient: httpx.AsyncClient
) -> None:
    clients = [await web_stack.ws("job=web-demo").__aenter__() for _ in range(10)]
    try:
        for ws in clients:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello" and hello["filters"]["job"] == "web-demo"
            snapshot = json.loads(await ws.recv())
            assert snapshot["type"] == "snapshot" and snapshot["runs"] == []
        fetches_before = web_stack.follower_fetches()
        run = await web_stack.enqueue(aclient, "web-demo", {"lines": 60, "delay": 0.01})
        streams = await asyncio.gather(*(read_until(ws, finished(run["id"])) for ws in clients))
    finally:
        for ws in clients:
            await ws.close()
    expected = await all_log_ids(aclient, run["id"])
    first = run_events(streams[0], run["id"])
    for stream in streams:
        assert run_events(stream, run["id"]) == first  # same updates, same order
        assert log_seqs(stream, run["id"]) == expected  # every line once, in order
    statuses = [event[1] for event in first if event[0] == "status"]
    assert statuses == ["QUEUED", "RUNNING", "SUCCESS"]
    feedback = [m for m in streams[0] if m.get("type") == "feedback"]
    assert feedback[-1]["progressCurrent"] == 60 and feedback[-1]["progressPercent"] == 100
    assert feedback[-1]["outcome"] == {"processed": 60, "warnings": 6}
    assert feedback[-1]["summary"].startswith("Completed in")
    assert {m["jobName"] for m in feedback} == {"web-demo"}
    # one read per change for all ten clients, not one per client
    fetched = web_stack.follower_fetches() - fetches_before
    assert 0 < fetched <= len(feedback) + 3, (fetched, len(feedback))


async def test_reconnect_with_seq_loses_and_duplicates_nothing(
    web_stack: Any, aclient: httpx.AsyncClient
) -> None:
    run = await web_stack.enqueue(aclient, "web-demo", {"lines": 300, "delay": 0.005})
    rid = run["id"]
    received: list[int] = []
    after = 0
    sessions = 0
    done = False
    while not done:
        sessions += 1
        assert sessions < 40, "run did not finish"
        async with web_stack.ws(f"runId={rid}&after={after}") as ws:
            got: list[Message] = []

            def enough(message: Message, got: list[Message] = got) -> bool:
                caught_up = any(m["type"] == "snapshot" for m in got)
                return finished(rid)(message) or (caught_up and len(log_seqs(got)) >= 25)

            await read_until(ws, enough, into=got)
            assert got[0]["type"] == "hello"
            snapshot = next(m for m in got if m["type"] == "snapshot")
            assert snapshot["run"]["id"] == rid
            assert all(m["type"] == "logs" for m in got[1 : got.index(snapshot)])
            received.extend(log_seqs(got))
            kinds = ("feedback", "logs", "status", "snapshot")
            seqs = [m["seq"] for m in got if m.get("type") in kinds]
            after = max([after, *seqs])
            done = any(finished(rid)(m) for m in got)
        await asyncio.sleep(0.15)  # lines keep coming while we are away
    assert sessions >= 3
    assert received == await all_log_ids(aclient, rid)
    assert len(received) == len(set(received)) == received[-1]


async def test_sse_resumes_from_last_event_id(web_stack: Any, aclient: httpx.AsyncClient) -> None:
    run = await web_stack.enqueue(aclient, "web-demo", {"lines": 150, "delay": 0.005})
    rid = run["id"]
    received: list[int] = []
    last_id: str | None = "0"
    finished_seen = False
    async with httpx.AsyncClient(base_url=web_stack.api_base, timeout=30) as sse:
        for _ in range(40):
            headers = {"Accept": "text/event-stream", "Last-Event-ID": last_id or "0"}
            params = {"runId": rid, "token": web_stack.token("viewer")}
            async with sse.stream("GET", "/stream/sse", params=params, headers=headers) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                count = 0
                async for line in r.aiter_lines():
                    if line.startswith("id: "):
                        last_id = line[4:]
                    elif line.startswith("data: "):
                        message = json.loads(line[6:])
                        received.extend(log_seqs([message]))
                        count += 1
                        if finished(rid)(message):
                            finished_seen = True
                            break
                        if count >= 6:
                            break
            if finished_seen:
                break
    assert finished_seen
    assert received == await all_log_ids(aclient, rid)
    hub = web_stack.api.state.hub
    for _ in range(100):  # a gone SSE client is noticed at the next write (<= ~2 s)
        if hub.bus.subscriber_count == 0:
            break
        await asyncio.sleep(0.05)
    assert hub.bus.subscriber_count == 0


async def test_filters_and_level_threshold(web_stack: Any, aclient: httpx.AsyncClient) -> None:
    async with (
        web_stack.ws("job=web-demo&level=warning", role="viewer") as warn_ws,
        web_stack.ws("queue=other") as other_ws,
        web_stack.ws("tenant=7") as tenant_ws,
    ):
        for ws in (warn_ws, other_ws, tenant_ws):
            await read_until(ws, lambda m: m["type"] == "snapshot")
        plain = await web_stack.enqueue(aclient, "web-demo", {"lines": 40, "delay": 0.0})
        tenant = await web_stack.enqueue(aclient, "web-typed", {"batch_size": 1}, tenantId=7)
        warned = await read_until(warn_ws, finished(plain["id"]))
        levels = {line["level"] for m in warned if m["type"] == "feedback" for line in m["logs"]}
        assert levels == {"warning", "milestone"} - {"milestone"}
        assert len(log_seqs(warned)) == 4  # the four warnings; no info lines
        got = await read_until(tenant_ws, finished(tenant["id"]))
        assert {m.get("runId") for m in got if m["type"] in ("status", "feedback")} == {
            tenant["id"]
        }
        await asyncio.sleep(0.5)
        other_ws_messages = []
        while True:
            try:
                other_ws_messages.append(json.loads(await asyncio.wait_for(other_ws.recv(), 0.1)))
            except TimeoutError:
                break
        assert all(m["type"] == "queues" for m in other_ws_messages)
        for m in other_ws_messages:
            assert set(m["queues"]) <= {"other"}


async def test_queue_stats_arrive_every_two_seconds(web_stack: Any) -> None:
    async with web_stack.ws("") as ws:
        got = await read_until(ws, lambda m: m["type"] == "queues", within=5)
        assert got[1]["type"] == "snapshot" and "queues" in got[1]
        start = time.monotonic()
        await read_until(ws, lambda m: m["type"] == "queues", within=5)
        assert 1.0 < time.monotonic() - start < 3.5


def _slow_socket(base: str) -> socket.socket:
    """A connected socket that buffers almost nothing, so the server feels backpressure."""
    parts = urlsplit(base)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.setblocking(False)
    return sock


async def test_slow_client_is_resynced_while_a_fast_one_keeps_its_latency(
    make_web_stack: Any,
) -> None:
    stack = make_web_stack(stream_queue_size=8)
    async with stack.client() as client:
        run = await stack.enqueue(client, "web-sleep", {"seconds": 0.01}, delay=3600)
        await client.post(f"/jobs/{run['id']}/cancel")
        lines = 1000
        url = f"{stack.ws_base}?token={stack.token()}&job=web-demo"
        slow = await connect(
            url, sock=_slow_socket(stack.base), max_queue=1, max_size=None, close_timeout=0.5
        )
        fast = await connect(url, max_size=None)
        try:
            for ws in (slow, fast):
                await read_until(ws, lambda m: m["type"] == "snapshot")
            demo = await stack.enqueue(
                client, "web-demo", {"lines": lines, "delay": 0.0, "payload": 10_000, "flush": 2}
            )
            fast_got = await read_until(fast, finished(demo["id"]), within=60)
            # the slow one reads only now: it was resynchronized, then continued
            slow_got = await read_until(slow, finished(demo["id"]), within=60)
        finally:
            await slow.close()
            await fast.close()
    assert not [m for m in fast_got if m["type"] == "resync"]
    assert log_seqs(fast_got) == list(range(1, log_seqs(fast_got)[-1] + 1))
    latencies = [
        m["_at"] - line["context"]["t0"]
        for m in fast_got
        if m["type"] == "feedback"
        for line in m["logs"]
        if line["context"] and "t0" in line["context"]
    ]
    assert len(latencies) == lines
    p95 = statistics.quantiles(latencies, n=20)[-1]
    assert p95 < 1.0, f"fast client p95 latency {p95:.3f}s"
    resyncs = [m for m in slow_got if m["type"] == "resync"]
    assert resyncs and resyncs[0]["reason"] == "overflow"
    assert len(log_seqs(slow_got)) < lines  # it skipped what it could not take


async def test_runs_executed_in_the_server_process_are_not_delivered_twice(
    make_web_stack: Any,
) -> None:
    stack = make_web_stack(worker=False, in_process_worker=True)
    hub = stack.api.state.hub
    async with stack.client() as client, stack.ws("job=web-demo") as ws:
        await read_until(ws, lambda m: m["type"] == "snapshot")
        run = await stack.enqueue(client, "web-demo", {"lines": 120, "delay": 0.005})
        got = await read_until(ws, finished(run["id"]))
        expected = await all_log_ids(client, run["id"])
        await asyncio.sleep(0.3)  # the follower's copies of the same commits arrive late
    assert log_seqs(got) == expected
    statuses = [m["status"] for m in got if m["type"] == "status"]
    assert statuses == ["QUEUED", "RUNNING", "SUCCESS"]
    assert hub.dropped_duplicates > 0  # both paths delivered; the copies were dropped
    for _ in range(50):
        if hub.bus.subscriber_count == 0:
            break
        await asyncio.sleep(0.05)
    assert hub.bus.subscriber_count == 0  # closed clients leave nothing behind


async def test_clients_leaving_mid_snapshot_do_not_stall_the_server(
    web_stack: Any, aclient: httpx.AsyncClient
) -> None:
    """Sessions cancelled while reading the store must not leave the pool stuck (psycopg_pool
    can lose a cancellation that arrives while a task waits for a connection)."""
    await web_stack.enqueue(aclient, "web-demo", {"lines": 300, "delay": 0.002})

    async def hit_and_run(query: str) -> None:
        async with web_stack.ws(query):
            pass  # close at once: the server's snapshot reads are cut off midway

    for round_ in range(15):
        queries = [f"job=web-demo&tenant=t{i}" for i in range(12)]
        await asyncio.gather(*(hit_and_run(q) for q in queries))
        started = time.monotonic()
        r = await asyncio.wait_for(aclient.get("/jobs", params={"limit": 5}), 10)
        assert r.status_code == 200
        assert time.monotonic() - started < 2.0, f"round {round_}: the server stalled"
