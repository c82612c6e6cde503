"""The Job Manager's files: served at `/` (and under a prefix or a mount), CSP-clean, never
parsing data as HTML, and shipped inside the wheel. No browser needed."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from jobglass import JobGlass
from jobglass.web.api import create_api
from jobglass.web.auth import AuthConfig
from jobglass.web.ui import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]
AUTH = AuthConfig(jwt_secret="s" * 32)
SCRIPTS = sorted(STATIC_DIR.glob("*.js"))


class Client:
    """Requests into the ASGI app in-process. Sync on purpose: the browser tests' Playwright
    owns the main thread's event loop, so each request runs on a loop of its own thread."""

    def __init__(self, asgi: FastAPI) -> None:
        self.asgi = asgi

    def get(self, path: str) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.asgi)
            async with httpx.AsyncClient(transport=transport, base_url="http://ui.test") as http:
                return await http.get(path)

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, fetch()).result()


def client(tmp_path: Path, prefix: str = "") -> Client:
    app = JobGlass(database_url=f"sqlite:///{tmp_path}/ui.db")
    return Client(create_api(app, auth=AUTH, prefix=prefix))


def test_the_page_is_served_at_the_root_with_a_strict_policy(tmp_path: Path) -> None:
    http = client(tmp_path)
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    html = response.text
    assert '<base href="/">' in html
    assert '<meta name="jobglass-api" content="/api/admin">' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert " style=" not in html and "<style" not in html, "inline style"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


def test_assets_have_the_right_types(tmp_path: Path) -> None:
    http = client(tmp_path)
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css"),
                       ("favicon.svg", "image/svg+xml")):  # fmt: skip
        response = http.get(f"/assets/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(kind), name
        assert "content-security-policy" in response.headers
    assert http.get("/assets/nope.js").status_code == 404
    assert http.get("/assets/%2e%2e/ui.py").status_code == 404


def test_under_a_prefix(tmp_path: Path) -> None:
    http = client(tmp_path, prefix="/jobs")
    page = http.get("/jobs/")
    assert page.status_code == 200
    assert '<base href="/jobs/">' in page.text
    assert 'content="/jobs/api/admin"' in page.text
    moved = http.get("/jobs?token=abc")
    assert moved.status_code == 307
    assert moved.headers["location"] == "/jobs/?token=abc"
    assert http.get("/jobs/assets/app.js").status_code == 200


def test_mounted_inside_another_app(tmp_path: Path) -> None:
    site = FastAPI()
    site.mount("/admin/jobs", create_api(JobGlass(database_url=f"sqlite:///{tmp_path}/m.db"),
                                          auth=AUTH))  # fmt: skip
    http = Client(site)
    page = http.get("/admin/jobs/")
    assert page.status_code == 200
    assert '<base href="/admin/jobs/">' in page.text
    assert 'content="/admin/jobs/api/admin"' in page.text
    assert http.get("/admin/jobs/assets/app.css").status_code == 200


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_scripts_never_parse_data_as_html(script: Path) -> None:
    source = script.read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute(\"style\""):  # fmt: skip
        assert sink not in source, f"{script.name} uses {sink}"


def test_every_module_import_resolves() -> None:
    for script in SCRIPTS:
        for target in re.findall(r'from "(\./[^"]+)"', script.read_text(encoding="utf-8")):
            assert (STATIC_DIR / target).is_file(), f"{script.name} imports missing {target}"
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for target in re.findall(r'(?:src|href)="assets/([^"]+)"', index):
        assert (STATIC_DIR / target).is_file(), f"index.html refers to missing {target}"


@pytest.mark.slow
def test_the_wheel_ships_the_page(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("jobglass-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in STATIC_DIR.iterdir():
        assert f"jobglass/web/static/{path.name}" in names
    assert "jobglass/web/ui.py" in names and "jobglass/demo.py" in names
