"""The Job Manager page: static files shipped inside the package, no build step.

`mount_ui(api, prefix)` serves the page at `{prefix}/` and its files at `{prefix}/assets/`.
The page finds the admin API at `{root_path}{prefix}/api/admin`, so it keeps working when the
whole API is mounted under a path of another ASGI app (Starlette sets `root_path`) or served
behind a proxy with uvicorn's `--root-path`.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).with_name("static")

#: No inline script or style anywhere in the page: everything comes from `assets/`.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}


class _Assets(StaticFiles):
    """StaticFiles with fixed media types (module scripts must be JavaScript everywhere)
    and the page's security headers; `no-cache` means revalidate by ETag, not "never store"."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media = MEDIA_TYPES.get(Path(str(full_path)).suffix)
        if media:
            response.headers["content-type"] = media
        response.headers.update(SECURITY_HEADERS)
        return response


def render_index(root_path: str, prefix: str) -> str:
    """index.html with its base URL and the API's path filled in (attribute-escaped)."""
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    base = f"{root_path.rstrip('/')}{prefix}/"
    return template.replace("{{BASE}}", html.escape(base, quote=True)).replace(
        "{{API}}", html.escape(base + "api/admin", quote=True)
    )


def mount_ui(api: FastAPI, prefix: str = "") -> None:
    """Serve the Job Manager at `{prefix}/` (hash routing: `#/runs`, `#/runs/42`, ...)."""
    prefix = prefix.rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    api.mount(prefix + "/assets", _Assets(directory=STATIC_DIR), name="jobglass-ui")

    async def index(request: Request) -> Response:
        page = render_index(str(request.scope.get("root_path") or ""), prefix)
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    api.add_api_route(prefix + "/", index, methods=["GET"], include_in_schema=False)
    if prefix:

        async def to_slash(request: Request) -> Response:
            root = str(request.scope.get("root_path") or "").rstrip("/")
            query = f"?{request.url.query}" if request.url.query else ""
            return RedirectResponse(f"{root}{prefix}/{query}", status_code=307)

        api.add_api_route(prefix, to_slash, methods=["GET"], include_in_schema=False)
