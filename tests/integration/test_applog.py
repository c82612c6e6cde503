"""Application and audit logs (`app.log`), over real HTTP, on both backends.

A FastAPI app (uvicorn, `RequestLoggingMiddleware`) opens the JobGlass app in its own
lifespan, so every store call happens on the server's loop, as in production; the test
reads back through the admin router. A WSGI app (wsgiref, `WSGIRequestLoggingMiddleware`)
talks to a JobGlass app opened on a background loop ("portal"), as a sync app would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from _servers import run_asgi, run_wsgi
from fastapi import FastAPI, Request

from jobglass.app import JobGlass
from jobglass.context import JobContext
from jobglass.observe.request import extract_logging_context
from jobglass.observe.request_logging import (
    RequestLoggingMiddleware,
    WSGIRequestLoggingMiddleware,
)
from jobglass.stores.applog_types import AppLogRecord
from jobglass.web.applog_api import router as applog_router

T = TypeVar("T")
SECRET = "applog-integration-secret-0123456789abcdef"


def token(sub: str, sid: str = "sess-1") -> str:
    return jwt.encode({"sub": sub, "sid": sid}, SECRET, algorithm="HS256")


def make_jobglass(url: str) -> JobGlass:
    jg = JobGlass(url, flush_interval=0.05)

    @jg.job(name="notify")
    async def notify(ctx: JobContext, post: str) -> dict[str, str]:
        ctx.app.log.current().info("notifying", {"post": post})  # type: ignore[union-attr]
        return {"post": post}

    @jg.job(name="explode")
    def explode(ctx: JobContext) -> None:
        raise RuntimeError("kaboom")

    return jg


# -- the ASGI app (mirrors examples/webapp) ------------------------------------------------------


def make_asgi(jg: JobGlass) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with jg:
            yield

    api = FastAPI(lifespan=lifespan)
    api.add_middleware(RequestLoggingMiddleware, jobglass=jg)
    api.include_router(applog_router(jg))

    @api.get("/api/users")
    async def users(request: Request) -> list[str]:
        jg.log.with_request(request).info("Users list accessed")
        return ["ada", "grace"]

    @api.post("/api/posts")
    async def create_post(request: Request) -> dict[str, Any]:
        body = await request.json()
        jg.log.with_request(request).audit(
            "post.created", "posts", {"postTitle": body["title"], "password": "hunter2"}
        )
        run = await jg.enqueue("notify", {"post": body["title"]})
        return {"runId": str(run.id), "correlationId": run.correlation_id, "userId": run.user_id}

    @api.post("/api/sync")
    async def sync(request: Request) -> dict[str, str]:
        ctx = extract_logging_context(
            source={
                "key": "datasource-1",
                "displayName": "PostgreSQL DB",
                "externalSystem": {"key": "system-1", "displayName": "External API"},
            },
            record={"key": "record-123", "displayName": "User Profile"},
        )
        jg.log.with_indexed_context(ctx).current().error("Sync failed", {"apiKey": "k-1"})
        return {"ok": "yes"}

    @api.get("/api/jobs/{name}")
    async def run_job(name: str) -> dict[str, Any]:
        run = await jg.run_job(name, {"post": "p"} if name == "notify" else {})
        return run.to_json()

    @api.get("/_runs/{run_id}")
    async def get_run(run_id: int) -> dict[str, Any]:
        return (await jg.get_run(run_id)).to_json()

    @api.post("/_flush")
    async def flush() -> dict[str, bool]:
        await jg.log.flush()
        return {"flushed": True}

    return api


@pytest.fixture
def asgi(store_url: str) -> Iterator[httpx.Client]:
    jg = make_jobglass(store_url)
    with run_asgi(make_asgi(jg), lifespan="on") as base, httpx.Client(base_url=base) as client:
        yield client


def logs(client: httpx.Client, path: str = "/api/admin/logs", **params: Any) -> Any:
    assert client.post("/_flush").status_code == 200
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- ASGI ----------------------------------------------------------------------------------------


def test_with_request_fields_are_persisted_and_queryable(asgi: httpx.Client) -> None:
    headers = {
        "x-correlation-id": "corr-users-1",
        "authorization": f"Bearer {token('user-42')}",
        "user-agent": "pytest-agent/1.0",
        "referer": "https://example.test/home",
    }
    response = asgi.get("/api/users", headers=headers)
    assert response.status_code == 200
    assert response.headers["x-correlation-id"] == "corr-users-1"

    page = logs(asgi, correlationId="corr-users-1")
    by_message = {line["message"]: line for line in page["logs"]}
    line = by_message["Users list accessed"]
    assert line["level"] == "info"
    assert line["correlationId"] == "corr-users-1"
    assert line["userId"] == "user-42"
    assert line["sessionId"] == "sess-1"
    assert line["ipAddress"] == "127.0.0.1"
    assert line["method"] == "GET"
    assert line["path"] == "/api/users"
    assert line["userAgent"] == "pytest-agent/1.0"
    assert line["referer"] == "https://example.test/home"
    assert line["context"] == {"jwtVerified": False}
    # the middleware's own request line, with metrics
    request_line = by_message["GET /api/users 200"]
    assert request_line["context"]["statusCode"] == 200
    assert request_line["responseSize"] == len(response.content)
    assert request_line["durationMs"] >= 0
    assert request_line["userId"] == "user-42"
    # every indexed filter finds it
    assert logs(asgi, userId="user-42", level="info")["logs"]
    assert not logs(asgi, userId="someone-else")["logs"]


def test_generated_correlation_id_is_echoed_and_shared_by_the_handler(
    asgi: httpx.Client,
) -> None:
    response = asgi.get("/api/users")
    generated = response.headers["x-correlation-id"]
    assert len(generated) == 32
    messages = {line["message"] for line in logs(asgi, correlationId=generated)["logs"]}
    assert messages == {"Users list accessed", "GET /api/users 200"}


def test_audit_with_request_is_redacted_and_the_enqueued_job_inherits_context(
    asgi: httpx.Client,
) -> None:
    headers = {"x-correlation-id": "corr-post-1", "authorization": f"Bearer {token('author-7')}"}
    body = asgi.post("/api/posts", json={"title": "Hello"}, headers=headers).json()
    assert body["correlationId"] == "corr-post-1"
    assert body["userId"] == "author-7"
    run = asgi.get(f"/_runs/{body['runId']}").json()
    assert run["correlationId"] == "corr-post-1"
    assert run["userId"] == "author-7"

    events = logs(asgi, "/api/admin/audit", correlationId="corr-post-1")["events"]
    assert len(events) == 1
    event = events[0]
    assert event["action"] == "post.created"
    assert event["resource"] == "posts"
    assert event["userId"] == "author-7"
    assert event["method"] == "POST"
    assert event["path"] == "/api/posts"
    assert event["requestSize"] == len(b'{"title":"Hello"}')
    assert event["data"] == {"postTitle": "Hello", "password": "[REDACTED]"}
    for params in (
        {"action": "post.created"},
        {"resource": "posts"},
        {"userId": "author-7"},
        {"since": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()},
    ):
        assert [e["id"] for e in logs(asgi, "/api/admin/audit", **params)["events"]] == [
            event["id"]
        ]
    future = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert logs(asgi, "/api/admin/audit", since=future)["events"] == []
    assert logs(asgi, "/api/admin/audit", until=future)["events"]
    assert logs(asgi, "/api/admin/audit", action="post.deleted")["events"] == []


def test_indexed_context_and_current_logger(asgi: httpx.Client) -> None:
    asgi.post("/api/sync", headers={"x-correlation-id": "corr-sync-1"})
    page = logs(asgi, sourceKey="datasource-1")
    assert [line["message"] for line in page["logs"]] == ["Sync failed"]
    line = page["logs"][0]
    assert line["level"] == "error"
    assert line["correlationId"] == "corr-sync-1"  # current(): bound to the request
    assert line["path"] == "/api/sync"
    assert line["sourceDisplayName"] == "PostgreSQL DB"
    assert line["externalSystemKey"] == "system-1"
    assert line["externalSystemDisplayName"] == "External API"
    assert line["recordKey"] == "record-123"
    assert line["recordDisplayName"] == "User Profile"
    assert line["context"]["apiKey"] == "[REDACTED]"
    for key, value in (
        ("sourceDisplayName", "PostgreSQL DB"),
        ("externalSystemKey", "system-1"),
        ("externalSystemDisplayName", "External API"),
        ("recordKey", "record-123"),
        ("recordDisplayName", "User Profile"),
    ):
        assert [x["id"] for x in logs(asgi, **{key: value})["logs"]] == [line["id"]]


def test_job_processor_lines_are_logged_for_every_run(asgi: httpx.Client) -> None:
    headers = {"x-correlation-id": "corr-job-1", "authorization": f"Bearer {token('u-9')}"}
    run = asgi.get("/api/jobs/notify", headers=headers).json()
    assert run["status"] == "SUCCESS"
    failed = asgi.get("/api/jobs/explode", headers={"x-correlation-id": "corr-job-2"}).json()
    assert failed["status"] == "FAILED"

    lines = logs(asgi, correlationId="corr-job-1")["logs"]
    by_message = {line["message"]: line for line in lines}
    started, completed = by_message["Job started"], by_message["Job completed"]
    for line in (started, completed):
        assert line["userId"] == "u-9"
        assert line["context"]["jobId"] == run["id"]
        assert line["context"]["jobType"] == "notify"
        assert line["context"]["userId"] == "u-9"
    assert completed["context"]["durationMs"] >= 0
    inside = by_message["notifying"]  # app.log.current() inside the run
    assert inside["context"] == {"jobId": run["id"], "jobType": "notify", "post": "p"}

    failure = {line["message"]: line for line in logs(asgi, correlationId="corr-job-2")["logs"]}
    assert failure["Job failed"]["level"] == "error"
    assert failure["Job failed"]["context"]["error"] == "kaboom"
    assert failure["Job failed"]["context"]["jobType"] == "explode"
    assert "Job started" in failure and "Job completed" not in failure


def test_cursor_pagination_newest_first(asgi: httpx.Client) -> None:
    for _ in range(5):
        asgi.get("/api/users", headers={"x-correlation-id": "corr-page"})
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"correlationId": "corr-page", "limit": 3}
        if cursor:
            params["beforeId"] = cursor
        page = logs(asgi, **params)
        seen += [int(line["id"]) for line in page["logs"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == 10
    assert seen == sorted(seen, reverse=True)
    bad = asgi.get("/api/admin/logs", params={"beforeId": "nope"})
    assert bad.status_code == 422
    assert asgi.get("/api/admin/logs", params={"level": "loud"}).status_code == 422


# -- WSGI ----------------------------------------------------------------------------------------


class Portal:
    """An event loop in a thread: what a sync (WSGI) app talks to jobglass through."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Awaitable[T]) -> T:
        async def run() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@contextmanager
def wsgi_server(store_url: str) -> Iterator[tuple[str, JobGlass, Portal]]:
    jg = make_jobglass(store_url)
    portal = Portal()
    portal.call(jg.open())

    def view(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/enqueue":
            run = portal.call(jg.enqueue("notify", {"post": "from-wsgi"}))
            jg.log.current().audit("post.created", "posts", {"runId": run.id})
            body = f"{run.id}".encode()
        else:
            jg.log.with_request(environ).warning("WSGI page viewed", {"token": "t"})
            body = b"hello"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    app = WSGIRequestLoggingMiddleware(view, jg)
    try:
        with run_wsgi(app) as base:
            yield base, jg, portal
    finally:
        portal.call(jg.close())
        portal.close()


def test_wsgi_middleware_binds_context_and_logs_requests(store_url: str) -> None:
    with wsgi_server(store_url) as (base, jg, portal), httpx.Client(base_url=base) as client:
        headers = {"x-correlation-id": "corr-wsgi-1", "authorization": f"Bearer {token('w-1')}"}
        page = client.get("/page", headers=headers)
        assert page.headers["x-correlation-id"] == "corr-wsgi-1"
        posted = client.post("/enqueue", headers=headers, content=b"12345")
        run = portal.call(jg.get_run(int(posted.text)))
        assert (run.correlation_id, run.user_id) == ("corr-wsgi-1", "w-1")
        time.sleep(0.05)  # the server closes the response (our log line) after sending it
        portal.call(jg.log.flush())
        lines = portal.call(jg.query_logs(correlation_id="corr-wsgi-1"))["logs"]
        by_message = {line["message"]: line for line in lines}
        viewed = by_message["WSGI page viewed"]
        assert viewed["level"] == "warning"
        assert (viewed["userId"], viewed["path"], viewed["method"]) == ("w-1", "/page", "GET")
        assert viewed["context"] == {"jwtVerified": False, "token": "[REDACTED]"}
        assert by_message["GET /page 200"]["responseSize"] == 5
        assert by_message["POST /enqueue 200"]["requestSize"] == 5
        events = portal.call(jg.query_audit(correlation_id="corr-wsgi-1"))["events"]
        assert [(e["action"], e["userId"], e["path"]) for e in events] == [
            ("post.created", "w-1", "/enqueue")
        ]


# -- sharing one logger --------------------------------------------------------------------------


@dataclass
class Tally:
    user: str
    count: int


async def test_shared_logger_is_immutable_under_threads_and_tasks(store_url: str) -> None:
    per_writer = 300
    async with make_jobglass(store_url) as jg:
        shared = jg.log.add_correlation("corr-shared").with_context(service="api")

        def thread_writer(i: int) -> None:
            mine = shared.add_user(f"thread-{i}").with_context(writer=i)
            for n in range(per_writer):
                mine.info("tick", {"n": n})
                shared.debug("shared", {"from": f"thread-{i}"})

        async def task_writer(i: int) -> None:
            mine = shared.add_user(f"task-{i}").with_context(writer=100 + i)
            for n in range(per_writer):
                mine.info("tick", {"n": n})
                if n % 50 == 0:
                    await asyncio.sleep(0)

        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(None, thread_writer, i) for i in range(4)),
            *(task_writer(i) for i in range(4)),
        )
        await jg.log.flush()
        assert shared._fields == {"correlation_id": "corr-shared"}
        assert shared._context == {"service": "api"}
        for user, writer in [(f"thread-{i}", i) for i in range(4)] + [
            (f"task-{i}", 100 + i) for i in range(4)
        ]:
            lines = await _all_logs(jg, user_id=user)
            assert len(lines) == per_writer
            assert {line["context"]["writer"] for line in lines} == {writer}
            assert sorted(line["context"]["n"] for line in lines) == list(range(per_writer))
            assert {line["correlationId"] for line in lines} == {"corr-shared"}
        shared_lines = await _all_logs(jg, level="debug")
        assert len(shared_lines) == 4 * per_writer
        assert all(line["userId"] is None for line in shared_lines)


async def _all_logs(jg: JobGlass, **filters: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await jg.query_logs(before_id=cursor, limit=1000, **filters)
        out += page["logs"]
        cursor = page["nextCursor"]
        if cursor is None:
            return out


async def test_awkward_values_never_lose_a_batch(store_url: str) -> None:
    """NUL characters, NaN and arbitrary objects: PostgreSQL refuses the first two, so the
    store cleans the batch and writes it again instead of failing forever."""
    async with make_jobglass(store_url) as jg:
        odd = jg.log.add_correlation("odd").add_user("nul\x00user")
        odd.info("nul\x00byte", {"nan": float("nan"), "obj": object(), "s": "a\x00b"})
        odd.with_request_metrics(duration_ms=2**70).info("fine")
        await jg.log.flush()
        lines = (await jg.query_logs(correlation_id="odd"))["logs"]
        assert len(lines) == 2 and lines[0]["message"] == "fine"
        assert lines[0]["durationMs"] == 2**63 - 1
        assert lines[1]["message"].startswith("nul") and lines[1]["message"].endswith("byte")
        assert lines[1]["context"]["obj"].startswith("<object object")
        assert lines[1]["userId"] in ("nul\x00user", "nul\ufffduser")


async def test_odd_contexts_and_audit_data_round_trip(store_url: str) -> None:
    """Contexts are encoded on the logging thread (audit data by the store): plain-string
    and list audit data, keys JSON has no form for, lone surrogates and a None message
    must all be written, never block the batch."""
    async with make_jobglass(store_url) as jg:
        log = jg.log.add_correlation("odd-ctx").with_context(service="svc")
        log.audit("note.added", "notes", "just a string")
        log.audit("tags.set", "notes", ["a", 1, None])
        log.info("tuple key", {(1, 2): "v", "n": 1})
        log.info("surrogate \ud800 here", {"s": "x\udfffy"})
        log.info(None, {"n": 2})  # type: ignore[arg-type]
        log.info("no call context")
        await jg.log.flush()
        events = (await jg.query_audit(correlation_id="odd-ctx"))["events"]
        assert [e["data"] for e in events] == [["a", 1, None], "just a string"]
        assert all(e["context"] == {"service": "svc"} for e in events)
        lines = (await jg.query_logs(correlation_id="odd-ctx"))["logs"]
        by_ctx = {line["message"]: line["context"] for line in lines}
        assert by_ctx["no call context"] == {"service": "svc"}
        assert by_ctx["tuple key"] == {"service": "svc", "(1, 2)": "v", "n": 1}
        assert by_ctx[""] == {"service": "svc", "n": 2}
        surrogate = next(line for line in lines if line["message"].startswith("surrogate"))
        assert surrogate["message"] in ("surrogate \ud800 here", "surrogate \ufffd here")
        assert surrogate["context"]["s"] in ("x\udfffy", "x\ufffdy")


# -- retention and indexes -----------------------------------------------------------------------


async def test_retention_prunes_app_and_audit_logs_separately(store_url: str) -> None:
    jg = JobGlass(store_url, app_log_days=1, audit_log_days=10)
    async with jg:
        now = time.time()
        day = 86400.0
        records = [
            AppLogRecord("app", now - 2 * day, "info", "old app line"),
            AppLogRecord("app", now, "info", "new app line"),
            AppLogRecord("audit", now - 2 * day, action="a.old", resource="r"),
            AppLogRecord("audit", now - 20 * day, action="a.ancient", resource="r"),
        ]
        records += [AppLogRecord("app", now - 3 * day, "debug", f"old {i}") for i in range(30)]
        assert await jg.store.write_app_logs(records) == len(records)
        assert await jg.store.prune_app_logs(None, None) == 0
        pruned = await jg.store.prune_app_logs(
            datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) - timedelta(days=10), batch=7
        )
        assert pruned == 32
        assert [x["message"] for x in (await jg.query_logs())["logs"]] == ["new app line"]
        assert [e["action"] for e in (await jg.query_audit())["events"]] == ["a.old"]
        assert await jg.prune_app_logs() == 0


async def test_every_filter_uses_its_index_without_sorting(store_url: str) -> None:
    """Each indexed filter (first page and a cursor page) is a range scan of its own
    index, already in newest-first order: no sort step."""
    from jobglass.stores.applog_types import ORDER_BY, AppLogFilter, applog_filter_sql

    now = datetime.now(UTC)
    filters: list[tuple[str, str, dict[str, Any]]] = [
        ("app", "level", {"levels": ["error"]}),
        ("app", "created_at", {"since": now - timedelta(hours=1), "until": now}),
        ("audit", "created_at", {"until": now}),
        ("audit", "action", {"action": "x"}),
        ("audit", "resource", {"resource": "x"}),
    ]
    for column in (
        "user_id",
        "correlation_id",
        "source_key",
        "source_display_name",
        "external_system_key",
        "external_system_display_name",
        "record_key",
        "record_display_name",
    ):
        filters += [("app", column, {column: "x"}), ("audit", column, {column: "x"})]
    async with JobGlass(store_url) as jg:
        store: Any = jg.store
        pg = store.url.startswith("postgres")
        for kind, column, values in filters:
            table = "audit_logs" if kind == "audit" else "app_logs"
            index = f"{table}_{column}"
            for cursor in (None, 12345):
                flt = AppLogFilter(kind, before_id=cursor, **values)
                if pg:
                    clause, args = applog_filter_sql(flt, lambda n: f"%({n})s", lambda t: t, now)
                    sql = f"EXPLAIN SELECT * FROM {table}{clause}{ORDER_BY} LIMIT 50"
                    async with store.connection() as conn:
                        # empty tables: make the planner show whether an ordered index path
                        # exists (it would pick a cheap sort of "37 rows" otherwise)
                        for knob in ("seqscan", "bitmapscan", "sort"):
                            await conn.execute(f"SET enable_{knob} = off")
                        cur = await conn.execute(sql.replace("%(limit)s", "50"), args)
                        plan = " ".join(str(r) for r in await cur.fetchall())
                        await conn.execute("RESET ALL")
                    assert index in plan and "Sort" not in plan, (kind, values, plan)
                else:
                    clause, args = applog_filter_sql(
                        flt, lambda n: f":{n}", datetime.timestamp, now.timestamp()
                    )
                    sql = f"EXPLAIN QUERY PLAN SELECT * FROM {table}{clause}{ORDER_BY} LIMIT 9"
                    rows = await store._read(lambda c, s=sql, a=args: c.execute(s, a).fetchall())
                    plan = " ".join(str(tuple(r)) for r in rows)
                    assert f"USING INDEX {index} " in plan, (kind, values, plan)
                    assert "TEMP B-TREE" not in plan, (kind, values, plan)


def test_admin_api_serves_logs_to_viewers_only(sqlite_url: str) -> None:
    from jobglass.web.api import create_api
    from jobglass.web.auth import AuthConfig

    jg = make_jobglass(sqlite_url)
    api = create_api(jg, auth=AuthConfig(api_keys={"view-key": "viewer"}))
    with run_asgi(api, lifespan="on") as base, httpx.Client(base_url=base) as client:
        assert client.get("/api/admin/logs").status_code == 401
        assert client.get("/api/admin/audit").status_code == 401
        viewer = {"x-api-key": "view-key"}
        page = client.get("/api/admin/logs", headers=viewer, params={"correlationId": "none"})
        assert page.status_code == 200, page.text
        assert page.json() == {"logs": [], "nextCursor": None}
        assert client.get("/api/admin/audit", headers=viewer).json() == {
            "events": [],
            "nextCursor": None,
        }
        bad = client.get("/api/admin/logs", headers=viewer, params={"since": "yesterday"})
        assert bad.status_code == 422
        assert "since" in bad.json()["error"]["message"]
