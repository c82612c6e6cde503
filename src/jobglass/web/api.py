"""The admin API: `create_api(app)` builds a FastAPI app from a JobGlass (no module globals).

Routes live under `{prefix}/api/admin`; OpenAPI at `{prefix}/api/openapi.json`. Every route
needs an identity (see auth.py); mutating routes need the admin role. Errors are always
`{"error": {"status": ..., "message": ...}}`, never a stack trace.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import Conflict, InvalidInput, NotFound
from ..models import LEVELS, Run, RunStatus, iso
from . import models as m
from .applog_api import router as applog_router
from .auth import (
    AuthConfig,
    Authenticator,
    AuthError,
    Identity,
    credentials,
    install_log_redaction,
)
from .hub import StreamHub
from .stream import add_stream_routes

if TYPE_CHECKING:
    from ..app import JobGlass

log = logging.getLogger("jobglass.web")

MAX_BODY = 1 << 20
LOG_FIELDS = ("id", "level", "stage", "message", "context", "createdAt")
STATUSES = ", ".join(s.value for s in RunStatus)

_bearer = HTTPBearer(auto_error=False, description="a JWT (HS256/RS256) or an API key")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)
_token_query = APIKeyQuery(name="token", auto_error=False, description="stream routes only")

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": m.ErrorResponse, "description": text}
    for code, text in (
        (400, "Malformed request"),
        (401, "Missing or invalid credentials"),
        (403, "Authenticated, but the role does not allow this"),
        (404, "No such run, job, schedule or route"),
        (409, "The run's state forbids this"),
        (422, "Invalid parameter or body; the message names the field"),
    )
}


def create_api(
    app: JobGlass,
    *,
    auth: AuthConfig | None = None,
    prefix: str = "",
    stream_queue_size: int = 1_000,
    stats_interval: float = 2.0,
) -> FastAPI:
    """Build the admin API, live stream and OpenAPI for `app`.

    `auth=None` reads `JOBGLASS_JWT_SECRET` / `_JWT_PUBLIC_KEY` / `_API_KEYS` etc. from the
    environment; with nothing configured every request is refused (401).
    """
    prefix = prefix.rstrip("/")
    base = prefix + "/api/admin"
    install_log_redaction()  # `?token=` of stream URLs must never reach a log
    authenticator = Authenticator(auth if auth is not None else AuthConfig.from_env())
    hub = StreamHub(app, client_queue_size=stream_queue_size, stats_interval=stats_interval)

    @asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        was_open = _is_open(app)
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            if not was_open:
                await app.close()

    api = FastAPI(
        title="jobglass admin API",
        version="1",
        description="Runs, logs, progress, outcome, queues, workers, schedules; live stream at "
        f"`{base}/stream` (WebSocket) and `{base}/stream/sse`.",
        openapi_url=prefix + "/api/openapi.json",
        docs_url=prefix + "/api/docs",
        redoc_url=None,
        lifespan=lifespan,
        responses={401: ERRORS[401], 422: ERRORS[422]},
        max_body_size=MAX_BODY,
    )
    api.state.jobglass = app
    api.state.hub = hub
    api.state.authenticator = authenticator
    _install_error_handlers(api)

    viewer = _identity(authenticator, write=False, allow_query=False)
    admin = _identity(authenticator, write=True, allow_query=False)
    stream_viewer = _identity(authenticator, write=False, allow_query=True)
    _add_routes(api, app, base, viewer, admin)
    api.include_router(applog_router(app), prefix=prefix, dependencies=[Depends(viewer)])
    add_stream_routes(api, hub, authenticator, base, stream_viewer, ERRORS)

    @api.get(prefix + "/api/health", tags=["meta"], include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    _maybe_mount_metrics(api, app)
    importlib.import_module("jobglass.web.ui").mount_ui(api, prefix)  # Job Manager at {prefix}/
    return api


def _is_open(app: JobGlass) -> bool:
    try:
        app.store  # noqa: B018 - raises when the app is not open
    except RuntimeError:
        return False
    return True


def _maybe_mount_metrics(api: FastAPI, app: JobGlass) -> None:
    """`/metrics` when `jobglass.observe.metrics.mount_metrics(api, app)` exists."""
    try:
        module = importlib.import_module("jobglass.observe.metrics")
    except ModuleNotFoundError as err:
        if err.name in ("jobglass.observe.metrics", "prometheus_client"):
            return
        raise
    mount = getattr(module, "mount_metrics", None)
    if callable(mount):
        mount(api, app)


# -- auth ------------------------------------------------------------------------------------


def _identity(
    authenticator: Authenticator, *, write: bool, allow_query: bool
) -> Callable[..., Awaitable[Identity]]:
    async def header_identity(
        request: Request,
        _bearer_token: Any = Security(_bearer),
        _key: Any = Security(_api_key),
    ) -> Identity:
        token, key = credentials(request.headers)
        identity = authenticator.authenticate(token, key)
        authenticator.authorize(identity, write=write)
        return identity

    async def query_identity(
        request: Request,
        _bearer_token: Any = Security(_bearer),
        _key: Any = Security(_api_key),
        _query: Any = Security(_token_query),
    ) -> Identity:
        token, key = credentials(request.headers, request.query_params)
        identity = authenticator.authenticate(token, key)
        authenticator.authorize(identity, write=write)
        return identity

    return query_identity if allow_query else header_identity


# -- errors ----------------------------------------------------------------------------------


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"error": {"status": status, "message": message}}, status_code=status, headers=headers
    )


def _install_error_handlers(api: FastAPI) -> None:
    async def auth_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, AuthError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.message, headers)

    async def invalid(_: Request, exc: Exception) -> Response:
        return error_response(422, str(exc))

    async def not_found(_: Request, exc: Exception) -> Response:
        return error_response(404, str(exc).strip("'\""))

    async def conflict(_: Request, exc: Exception) -> Response:
        return error_response(409, str(exc))

    async def validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "the request body is not valid JSON")
        return error_response(422, "; ".join(_describe(e) for e in errors[:5]))

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    async def crash(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal server error (logged on the server)")

    api.add_exception_handler(AuthError, auth_error)
    api.add_exception_handler(InvalidInput, invalid)
    api.add_exception_handler(NotFound, not_found)
    api.add_exception_handler(Conflict, conflict)
    api.add_exception_handler(RequestValidationError, validation)
    api.add_exception_handler(StarletteHTTPException, http_error)
    api.add_exception_handler(Exception, crash)


def _describe(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    where = {"query": "query parameter", "path": "path parameter", "body": "body field"}
    kind = where.get(loc[0], loc[0]) if loc else "request"
    name = ".".join(loc[1:]) or ("body" if loc[:1] == ["body"] else "?")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{kind} {name!r}: {message}"


# -- routes ------------------------------------------------------------------------------------

Ident = Callable[..., Awaitable[Identity]]


def _add_routes(api: FastAPI, app: JobGlass, base: str, viewer: Ident, admin: Ident) -> None:
    read: dict[str, Any] = {"tags": ["runs"], "responses": ERRORS}

    @api.get(base + "/me", response_model=m.MeResponse, tags=["meta"], responses=ERRORS)
    async def me(identity: Identity = Depends(viewer)) -> dict[str, Any]:
        return {"identity": {k: getattr(identity, k) for k in ("subject", "role", "method")}}

    @api.get(base + "/jobs", response_model=m.RunList, summary="List runs, newest first", **read)
    async def list_runs(
        _: Identity = Depends(viewer),
        status: str | None = Query(None, max_length=200, description=f"comma list: {STATUSES}"),
        job: str | None = Query(None, max_length=128),
        queue: str | None = Query(None, max_length=64),
        tenant: str | None = Query(None, max_length=128),
        correlationId: str | None = Query(None, max_length=128),
        createdAfter: datetime | None = Query(None, description="ISO-8601; UTC if no zone"),
        createdBefore: datetime | None = Query(None, description="ISO-8601; UTC if no zone"),
        q: str | None = Query(None, max_length=200, description="text in name/stage/ids"),
        cursor: int | None = Query(None, ge=1, le=2**63 - 1, description="`nextCursor`"),
        limit: int = Query(50, ge=1, le=500),
    ) -> dict[str, Any]:
        statuses = [s.strip().upper() for s in (status or "").split(",") if s.strip()]
        for value in statuses:
            if value not in RunStatus.__members__:
                raise InvalidInput(f"query parameter 'status': unknown status {value!r}")
        texts = {"job": job, "queue": queue, "tenant": tenant, "correlationId": correlationId}
        for name, text in {**texts, "q": q}.items():
            _query_text(name, text)
        runs = await app.list_runs(
            status=statuses,
            job_name=job or None,
            queue=queue or None,
            tenant_id=tenant or None,
            correlation_id=correlationId or None,
            created_after=_utc(createdAfter, "query parameter 'createdAfter'"),
            created_before=_utc(createdBefore, "query parameter 'createdBefore'"),
            text=q or None,
            before_id=cursor,
            limit=limit,
        )
        next_cursor = str(runs[-1].id) if len(runs) == limit else None
        return {"runs": [run.to_json() for run in runs], "nextCursor": next_cursor}

    @api.post(
        base + "/jobs",
        response_model=m.RunResponse,
        status_code=201,
        summary="Enqueue a run (trigger API); 200 with the live run when `jobId` dedupes",
        tags=["runs"],
        responses={**ERRORS, 200: {"model": m.RunResponse, "description": "deduplicated"}},
    )
    async def enqueue(
        body: m.EnqueueBody, request: Request, response: Response, _: Identity = Depends(admin)
    ) -> dict[str, Any]:
        from ..enqueue import EnqueueRequest

        correlation = body.correlationId or _header_correlation(request)
        if body.runAt is not None and body.runAt.tzinfo is not None:
            _utc(body.runAt, "body field 'runAt'")
        if body.jobName not in app.jobs:
            known = ", ".join(sorted(app.jobs)) or "none registered"
            raise InvalidInput(f"body field 'jobName': unknown job {body.jobName!r} ({known})")
        item = EnqueueRequest(
            body.jobName,
            body.params,
            queue=body.queue,
            priority=body.priority,
            delay=body.delay,
            run_at=body.runAt,
            job_id=body.jobId,
            timeout=body.timeout,
            correlation_id=correlation,
            tenant_id=body.tenantId,
            user_id=body.userId,
        )
        created = (await app.enqueue_many([item]))[0]
        if not created.created:
            response.status_code = 200
        return {"run": created.run.to_json()}

    @api.get(base + "/jobs/{run_id}", response_model=m.RunResponse, summary="A run", **read)
    async def get_run(
        run_id: str = _run_id_path(), _: Identity = Depends(viewer)
    ) -> dict[str, Any]:
        return {"run": (await app.get_run(run_id)).to_json()}

    @api.get(base + "/jobs/{run_id}/logs", response_model=m.LogList, summary="A run's log", **read)
    async def get_logs(
        run_id: str = _run_id_path(),
        _: Identity = Depends(viewer),
        level: str | None = Query(None, description=f"threshold: {', '.join(LEVELS)}"),
        limit: int = Query(100, ge=1, le=10_000),
        after: int | None = Query(None, ge=0, le=2**63 - 1, description="lines after this id"),
    ) -> dict[str, Any]:
        if level is not None and level not in LEVELS:
            raise InvalidInput(f"query parameter 'level': use one of {', '.join(LEVELS)}")
        lines = await app.get_logs(run_id, level=level, limit=limit, after=after)
        return {"logs": [_log_row(line.to_json()) for line in lines]}

    @api.get(base + "/jobs/{run_id}/progress", response_model=m.ProgressResponse, **read)
    async def get_progress(
        run_id: str = _run_id_path(), _: Identity = Depends(viewer)
    ) -> dict[str, Any]:
        return await app.get_progress(run_id)

    @api.get(base + "/jobs/{run_id}/outcome", response_model=m.OutcomeResponse, **read)
    async def get_outcome(
        run_id: str = _run_id_path(), _: Identity = Depends(viewer)
    ) -> dict[str, Any]:
        return await app.get_outcome(run_id)

    @api.post(
        base + "/jobs/{run_id}/cancel", response_model=m.RunResponse, summary="Cancel", **read
    )
    async def cancel(run_id: str = _run_id_path(), _: Identity = Depends(admin)) -> dict[str, Any]:
        return {"run": (await app.cancel(run_id)).to_json()}

    @api.post(base + "/jobs/{run_id}/retry", response_model=m.RunResponse, summary="Retry", **read)
    async def retry(run_id: str = _run_id_path(), _: Identity = Depends(admin)) -> dict[str, Any]:
        return {"run": (await app.retry(run_id)).to_json()}

    @api.delete(
        base + "/jobs/{run_id}",
        status_code=204,
        response_class=Response,
        summary="Delete a finished run and its log",
        **read,
    )
    async def delete_run(run_id: str = _run_id_path(), _: Identity = Depends(admin)) -> Response:
        await app.delete_run(run_id)
        return Response(status_code=204)

    _add_meta_routes(api, app, base, viewer, admin)


def _add_meta_routes(api: FastAPI, app: JobGlass, base: str, viewer: Ident, admin: Ident) -> None:
    @api.get(base + "/queues", response_model=m.QueuesResponse, tags=["queues"], responses=ERRORS)
    async def queues(_: Identity = Depends(viewer)) -> dict[str, Any]:
        return {"queues": await app.queue_stats()}

    @api.get(
        base + "/queues/stats",
        response_model=dict[str, m.QueueStatsModel],
        tags=["queues"],
        summary="Queue statistics keyed by queue (seed 003 shape)",
        responses=ERRORS,
    )
    async def queue_stats(_: Identity = Depends(viewer)) -> dict[str, Any]:
        return await app.queue_stats()

    @api.get(
        base + "/queues/throughput",
        response_model=m.ThroughputResponse,
        tags=["queues"],
        summary="Runs finished per queue and minute (SUCCESS as completed, FAILED as failed)",
        responses=ERRORS,
    )
    async def queue_throughput(
        _: Identity = Depends(viewer),
        minutes: int = Query(60, ge=1, le=1440, description="the last N minutes, this one too"),
    ) -> dict[str, Any]:
        since, buckets = await app.finished_per_minute(minutes)
        return {"since": iso(since), "minutes": minutes, "buckets": [b.to_json() for b in buckets]}

    @api.get(
        base + "/workers", response_model=m.WorkersResponse, tags=["workers"], responses=ERRORS
    )
    async def workers(_: Identity = Depends(viewer)) -> dict[str, Any]:
        return {"workers": [w.to_json() for w in await app.workers()]}

    @api.get(
        base + "/registry",
        response_model=m.RegistryResponse,
        response_model_exclude_unset=True,
        tags=["jobs"],
        summary="Registered jobs and their parameters",
        responses=ERRORS,
    )
    async def registry(_: Identity = Depends(viewer)) -> dict[str, Any]:
        return {"jobs": [app.jobs[name].describe() for name in sorted(app.jobs)]}

    not_impl = {"model": m.ErrorResponse, "description": "This app has no scheduler"}
    sched: dict[str, Any] = {"tags": ["schedules"], "responses": {**ERRORS, 501: not_impl}}

    @api.get(base + "/schedules", response_model=m.SchedulesResponse, **sched)
    async def schedules(_: Identity = Depends(viewer)) -> dict[str, Any]:
        items = await _call_scheduler(app, "schedules")
        return {"schedules": [_jsonable(item) for item in items or []]}

    async def act(method: str, name: str) -> dict[str, Any]:
        _query_text("name", name)
        result = await _call_scheduler(app, method, name)
        if isinstance(result, Run):
            return {"run": result.to_json(), "schedule": name}
        return {"schedule": _jsonable(result) if result is not None else name}

    @api.post(base + "/schedules/{name}/pause", response_model=m.ScheduleAction, **sched)
    async def pause(
        name: str = Path(min_length=1, max_length=200), _: Identity = Depends(admin)
    ) -> dict[str, Any]:
        return await act("pause_schedule", name)

    @api.post(base + "/schedules/{name}/resume", response_model=m.ScheduleAction, **sched)
    async def resume(
        name: str = Path(min_length=1, max_length=200), _: Identity = Depends(admin)
    ) -> dict[str, Any]:
        return await act("resume_schedule", name)

    @api.post(base + "/schedules/{name}/trigger", response_model=m.ScheduleAction, **sched)
    async def trigger(
        name: str = Path(min_length=1, max_length=200), _: Identity = Depends(admin)
    ) -> dict[str, Any]:
        return await act("trigger_schedule", name)


async def _call_scheduler(app: JobGlass, method: str, *args: Any) -> Any:
    fn = getattr(app, method, None)
    if not callable(fn):
        raise StarletteHTTPException(
            501, f"schedules are not available: this jobglass app has no {method}()"
        )
    out = fn(*args)
    if inspect.isawaitable(out):
        out = await out
    return out


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_json") and callable(value.to_json):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _log_row(row: dict[str, Any]) -> dict[str, Any]:
    """Seed 001's log row exactly: id, level, stage, message, context, createdAt."""
    return {key: row.get(key) for key in LOG_FIELDS}


def _query_text(name: str, value: str | None) -> None:
    if value is not None and "\x00" in value:
        raise InvalidInput(f"query parameter {name!r}: NUL characters are not allowed")


def _run_id_path() -> Any:
    return Path(description="the run id", max_length=32)


def _utc(value: datetime | None, name: str = "time") -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{name}: out of range") from None


def _header_correlation(request: Request) -> str | None:
    for header in ("x-correlation-id", "x-request-id"):
        value = (request.headers.get(header) or "").strip()
        if value:
            return value[:128]
    return None
