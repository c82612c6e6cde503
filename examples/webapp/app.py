"""A small FastAPI app that logs like the SDK's Express examples, through `app.log`.

    uvicorn examples.webapp.app:api --port 8000
    curl -H 'x-correlation-id: demo-1' localhost:8000/api/users

- `GET /api/users`: `with_request(request).info(...)` (IP, method, path, user agent,
  correlation id, user and session from the bearer JWT, referer, request size);
- `POST /api/posts`: an audit event with request context, and a job enqueued for the post
  (it inherits the request's correlation id and user);
- `POST /api/login`: `with_request(...).add_user(...).audit("user.login", ...)`;
- `POST /api/sync`: a failed sync logged with indexed context (source, external system,
  record);
- `GET /api/upstream`: an upstream call logged with request metrics;
- the `process-post` job: `Job started` / `Job completed` / `Job failed` are logged for
  every run automatically; inside, `app.log.current()` carries the run's ids.

`RequestLoggingMiddleware` binds each request's correlation id and user, echoes
`x-correlation-id`, and logs one line per request with its size, duration and status.
Read the logs back with `GET /api/admin/logs` / `GET /api/admin/audit` on the admin API
(`jobglass.web.api.create_api`), or `await jobs.query_logs(correlation_id=...)`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request

from jobglass import JobContext, JobGlass
from jobglass.observe.request import extract_logging_context
from jobglass.observe.request_logging import RequestLoggingMiddleware


def create_app(database_url: str | None = None) -> tuple[FastAPI, JobGlass]:
    jobs = JobGlass(database_url)

    @jobs.job(name="process-post")
    async def process_post(ctx: JobContext, title: str) -> dict[str, Any]:
        # already bound to this run: correlation id, user, jobId, jobType
        jobs.log.current().info("Indexing post", {"title": title})
        await asyncio.sleep(0.01)
        return {"indexed": title}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with jobs:  # opens the store; on exit, flushes the app log buffer
            yield

    api = FastAPI(title="jobglass web app example", lifespan=lifespan)
    api.add_middleware(RequestLoggingMiddleware, jobglass=jobs)

    @api.get("/api/users")
    async def list_users(request: Request) -> list[dict[str, str]]:
        # Simple: auto-extracts IP, method, path, userAgent, correlationId, userId, ...
        jobs.log.with_request(request).info("Users list accessed")
        return [{"id": "1", "name": "Ada"}, {"id": "2", "name": "Grace"}]

    @api.post("/api/posts", status_code=201)
    async def create_post(request: Request) -> dict[str, Any]:
        body = await request.json()
        title = str(body.get("title", ""))
        if not title:
            raise HTTPException(422, "a post needs a title")
        jobs.log.with_request(request).audit("post.created", "posts", {"postTitle": title})
        run = await jobs.enqueue("process-post", {"title": title})
        return {"message": "Post created", "jobRunId": str(run.id)}

    @api.post("/api/login")
    async def login(request: Request) -> dict[str, str]:
        body = await request.json()
        user_id = str(body.get("userId", "anonymous"))
        # `password` in the data would be stored as [REDACTED]
        jobs.log.with_request(request).add_user(user_id).audit("user.login", "authentication")
        return {"message": "Welcome"}

    @api.post("/api/sync")
    async def sync(request: Request) -> dict[str, str]:
        log_context = extract_logging_context(
            source={
                "key": "datasource-1",
                "displayName": "PostgreSQL DB",
                "externalSystem": {"key": "system-1", "displayName": "External API"},
            },
            record={"key": "record-123", "displayName": "User Profile"},
        )
        try:
            raise ConnectionError("upstream refused the connection")
        except ConnectionError as err:
            jobs.log.with_indexed_context(log_context).current().error(
                "Sync failed", {"error": str(err)}
            )
        return {"status": "sync failed (logged)"}

    @api.get("/api/upstream")
    async def upstream(request: Request) -> dict[str, Any]:
        request_body = {"query": "users", "limit": 10}
        started = time.perf_counter()
        response = await call_upstream(request_body)
        duration_ms = (time.perf_counter() - started) * 1000
        jobs.log.with_request(request).with_request_metrics(
            len(json.dumps(request_body)), len(json.dumps(response)), duration_ms
        ).info("Upstream API call completed")
        return response

    return api, jobs


async def call_upstream(body: dict[str, Any]) -> dict[str, Any]:
    """Stands in for an HTTP call to another service."""
    await asyncio.sleep(0.005)
    return {"items": [{"id": i} for i in range(int(body.get("limit", 0)))]}


api, jobs = create_app()
