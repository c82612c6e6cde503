"""Fixtures for tests/integration. One section per concern; add new sections below.

Web stack (`web_stack` / `make_web_stack`)
    A real uvicorn server (background thread, random port) serving `create_api(app)` for a
    database from `store_url`, plus a worker in a separate process running
    `tests/integration/web_jobs.py`. Tokens: `stack.token("admin")`, `stack.headers("viewer")`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from _servers import run_asgi
from web_jobs import make_app
from websockets.asyncio.client import connect

from jobglass.web.api import create_api
from jobglass.web.auth import AuthConfig

# -- web stack ----------------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
WEB_SECRET = "jobglass-web-test-secret-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789"
VIEWER_KEY = "viewer-key-0123456789"
WEB_AUTH = AuthConfig(
    jwt_secret=WEB_SECRET, api_keys={ADMIN_KEY: "admin", VIEWER_KEY: "viewer"}
)


class WebStack:
    """A served API (and optionally a worker process) over one database."""

    def __init__(self, db_url: str, base: str, api: Any, worker: subprocess.Popen[str] | None):
        self.db_url = db_url
        self.base = base
        self.api_base = base + "/api/admin"
        self.ws_base = base.replace("http://", "ws://") + "/api/admin/stream"
        self.api = api
        self.worker = worker

    @property
    def backend(self) -> str:
        return "postgres" if self.db_url.startswith("postgres") else "sqlite"

    @staticmethod
    def token(role: Any = "admin", ttl: float = 300, **claims: Any) -> str:
        now = int(time.time())
        body = {"sub": f"test-{role}", "role": role, "iat": now, "exp": now + int(ttl), **claims}
        return jwt.encode(body, WEB_SECRET, algorithm="HS256")

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}

    def client(self, role: str | None = "admin", **kwargs: Any) -> httpx.AsyncClient:
        headers = self.headers(role) if role else {}
        return httpx.AsyncClient(base_url=self.api_base, headers=headers, timeout=30, **kwargs)

    def ws(self, query: str = "", role: str | None = "admin", **kwargs: Any) -> Any:
        sep = "&" if query else ""
        token = f"token={self.token(role)}{sep}" if role else ""
        url = f"{self.ws_base}?{token}{query}"
        return connect(url, max_size=None, open_timeout=10, **kwargs)

    async def enqueue(
        self, client: httpx.AsyncClient, job: str, params: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        r = await client.post("/jobs", json={"jobName": job, "params": params or {}, **kw})
        assert r.status_code in (200, 201), r.text
        run: dict[str, Any] = r.json()["run"]
        return run

    async def wait_status(
        self,
        client: httpx.AsyncClient,
        run_id: str,
        statuses: tuple[str, ...] = ("SUCCESS", "FAILED", "CANCELLED"),
        within: float = 30.0,
    ) -> dict[str, Any]:
        import asyncio

        deadline = time.monotonic() + within
        while True:
            run: dict[str, Any] = (await client.get(f"/jobs/{run_id}")).json()["run"]
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} still {run['status']} after {within}s")
            await asyncio.sleep(0.05)

    def follower_fetches(self) -> int:
        return int(self.api.state.hub.follower.fetches)


class WithWorker:
    """ASGI wrapper running a worker inside the server's own event loop (and process)."""

    def __init__(self, api: Any, app: Any) -> None:
        self.api = api
        self.app = app
        self.worker: Any = None
        self.task: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import asyncio

        if scope["type"] != "lifespan":
            await self.api(scope, receive, send)
            return

        async def wrapped_receive() -> Any:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.worker = self.app.worker(queues=["default", "web"], concurrency=4)
                self.task = asyncio.create_task(self.worker.run())
            elif message["type"] == "lifespan.shutdown" and self.task is not None:
                self.worker.stop()
                self.worker.stop()
                await self.task
            return message

        await self.api(scope, wrapped_receive, send)


def _start_worker(db_url: str, concurrency: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "web_jobs.py"), db_url, str(concurrency)],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        env=env,
        cwd=str(HERE),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"worker did not start: {line!r}")
    return proc


def _stop_worker(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def make_web_stack(store_url: str) -> Iterator[Callable[..., WebStack]]:
    """`make_web_stack(worker=True, concurrency=8, auth=WEB_AUTH, server_options=None,
    in_process_worker=False, **create_api_options)`; `worker` starts a worker process,
    `in_process_worker` one inside the API server (both may run)."""
    with contextlib.ExitStack() as stack:

        def make(
            worker: bool = True,
            concurrency: int = 8,
            auth: AuthConfig = WEB_AUTH,
            server_options: dict[str, Any] | None = None,
            in_process_worker: bool = False,
            **options: Any,
        ) -> WebStack:
            app = make_app(store_url, grace_seconds=1.0, poll_interval=0.02)
            api = create_api(app, auth=auth, **options)
            served = WithWorker(api, app) if in_process_worker else api
            base = stack.enter_context(
                run_asgi(
                    served,
                    lifespan="on",
                    ws="websockets-sansio",
                    ws_per_message_deflate=False,
                    **(server_options or {}),
                )
            )
            # the server opened (and migrated) the database; now the worker may start
            httpx.get(base + "/api/health", timeout=10).raise_for_status()
            proc = None
            if worker:
                proc = _start_worker(store_url, concurrency)
                stack.callback(_stop_worker, proc)
            return WebStack(store_url, base, api, proc)

        yield make


@pytest.fixture
def web_stack(make_web_stack: Callable[..., WebStack]) -> WebStack:
    return make_web_stack()


@pytest.fixture
async def aclient(web_stack: WebStack) -> AsyncIterator[httpx.AsyncClient]:
    async with web_stack.client() as client:
        yield client
