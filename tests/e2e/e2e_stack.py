"""A real server and a real worker, each in its own process, on one SQLite file.

The server is `python -m jobglass serve e2e_jobs:app` (the same code path as the CLI); the
worker is `python -m jobglass worker e2e_jobs:app`. Both run in a scratch directory (so no
stray `.env` or `jobglass.toml` is picked up) with the test's database and JWT secret.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from jobglass.web.auth import make_dev_token

HERE = Path(__file__).resolve().parent
APP = "e2e_jobs:app"
SECRET = "e2e-secret-" + "x" * 32
ADMIN_KEY = "e2e-admin-key-0123456789"
VIEWER_KEY = "e2e-viewer-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db = workdir / "e2e.db"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.admin_token = make_dev_token(SECRET, role="admin", subject="e2e-admin")
        self.viewer_token = make_dev_token(SECRET, role="viewer", subject="e2e-viewer")
        self.http = httpx.Client(base_url=self.base, timeout=10)

    # -- processes ------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            JOBGLASS_DATABASE_URL=f"sqlite:///{self.db}",
            JOBGLASS_JWT_SECRET=SECRET,
            JOBGLASS_API_KEYS=f"{ADMIN_KEY}:admin,{VIEWER_KEY}:viewer",
            PYTHONPATH=os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "jobglass", *args],
                cwd=self.workdir,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()

    def start_server(self) -> None:
        self.server = self._spawn(
            "server", "serve", APP, "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "warning",
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.logs('server')}")
            try:
                if self.http.get("/api/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not start:\n{self.logs('server')}")

    def kill_server(self) -> None:
        """A crash, not a shutdown: SIGKILL, no goodbye to the browsers."""
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGKILL)
            self.server.wait(10)

    def start_worker(self) -> None:
        self.worker = self._spawn(
            "worker", "worker", APP, "--queues", "default", "--concurrency", "8", "--grace", "1"
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{self.logs('worker')}")
            if self.get("/workers")["workers"]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the worker did not start:\n{self.logs('worker')}")

    def start_scheduler(self) -> None:
        """`jobglass scheduler`: fires the app's schedules (e2e_jobs: `e2e-tick`) once stored."""
        self.scheduler = self._spawn("scheduler", "scheduler", APP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"the scheduler exited:\n{self.logs('scheduler')}")
            if all(s["updatedAt"] for s in self.get("/schedules")["schedules"]):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the scheduler did not start:\n{self.logs('scheduler')}")

    def stop(self) -> None:
        procs = (self.scheduler, self.worker, self.server)
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            if proc is None:
                continue
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.http.close()

    def logs(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    # -- API --------------------------------------------------------------------------------------

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    def get(self, path: str, token: str | None = None, **params: Any) -> Any:
        response = self.http.get("/api/admin" + path, headers=self.headers(token), params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any = None, token: str | None = None) -> httpx.Response:
        return self.http.post("/api/admin" + path, headers=self.headers(token), json=body)

    def enqueue(
        self, job: str, options: dict[str, Any] | None = None, **params: Any
    ) -> dict[str, Any]:
        """Enqueue `job` with `params`; `options` are other body fields (queue, tenantId...)."""
        response = self.post("/jobs", {"jobName": job, "params": params, **(options or {})})
        assert response.status_code == 201, response.text
        run: dict[str, Any] = response.json()["run"]
        return run

    def run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.get(f"/jobs/{run_id}")["run"]
        return run

    def wait_status(self, run_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} is {run['status']}, not {statuses}")
            time.sleep(0.1)

    def url(self, hash_: str = "#/runs", token: str | None = None) -> str:
        query = f"?token={token}" if token else ""
        return f"{self.base}/{query}{hash_}"


class Pages:
    """Browser contexts for a test; each records dialogs and page errors."""

    def __init__(self, browser: Any, stack: Stack) -> None:
        self.browser = browser
        self.stack = stack
        self.contexts: list[Any] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []

    def open(self, token: str | None = None, hash_: str = "#/runs", **options: Any) -> Any:
        """A new context signed in with `token` (default: the admin's; "" for none)."""
        options.setdefault("viewport", {"width": 1400, "height": 1000})
        context = self.browser.new_context(**options)
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.on("console", self._console)
        page.goto(self.stack.url(hash_, self.stack.admin_token if token is None else token))
        return page

    def _console(self, message: Any) -> None:
        # the page must live within its Content-Security-Policy (no inline script or style)
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def close(self) -> None:
        for context in self.contexts:
            context.close()
