"""`jobglass serve MODULE:APP`: the admin API, live stream and Job Manager under uvicorn.

Without configured authentication the server makes a one-time secret, prints a dev admin
token and a URL carrying it, and refuses to listen beyond loopback unless `--insecure`.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .auth import AuthConfig, make_dev_token, new_dev_secret

if TYPE_CHECKING:
    from ..app import JobGlass

log = logging.getLogger("jobglass.web.serve")

DEV_TOKEN_TTL = 12 * 3600


class UnsafeBind(Exception):
    """Refusing to serve without authentication on a non-loopback address."""


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServePlan:
    """What `serve` will do: the auth to use and, in dev mode, the token to print."""

    auth: AuthConfig
    dev_token: str | None = None

    def banner(self, host: str, port: int) -> str:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"
        url = f"http://{shown}:{port}/"
        if self.dev_token is None:
            return f"jobglass: serving on {url} (API at {url}api/admin, docs at {url}api/docs)"
        return (
            "jobglass: no authentication configured (JOBGLASS_JWT_SECRET, JOBGLASS_JWT_PUBLIC_KEY"
            " or JOBGLASS_API_KEYS);\n"
            "jobglass: using a one-time dev secret. Dev admin token (valid 12 h, this run only):\n"
            f"  {self.dev_token}\n"
            f"jobglass: open {url}?token={self.dev_token}\n"
        )


def plan(host: str, *, insecure: bool = False, auth: AuthConfig | None = None) -> ServePlan:
    config = auth if auth is not None else AuthConfig.from_env()
    if config.enabled:
        return ServePlan(config)
    if not is_loopback(host) and not insecure:
        raise UnsafeBind(
            f"refusing to serve on {host} without authentication: set JOBGLASS_JWT_SECRET,"
            " JOBGLASS_JWT_PUBLIC_KEY or JOBGLASS_API_KEYS, bind to 127.0.0.1, or pass"
            " --insecure to accept a dev token on this address"
        )
    secret = new_dev_secret()
    return ServePlan(AuthConfig(jwt_secret=secret), make_dev_token(secret, ttl=DEV_TOKEN_TTL))


async def serve(
    app: JobGlass,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    insecure: bool = False,
    auth: AuthConfig | None = None,
    log_level: str = "info",
    out: TextIO | None = None,
    **uvicorn_options: Any,
) -> int:
    """Serve until interrupted; returns the exit status."""
    import uvicorn

    from .api import create_api

    chosen = plan(host, insecure=insecure, auth=auth)
    api = create_api(app, auth=chosen.auth)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "lifespan": "on",
        "ws_per_message_deflate": False,
        "proxy_headers": False,
        "server_header": False,
        # SSE responses never end by themselves: do not wait for them forever on shutdown
        "timeout_graceful_shutdown": 3,
    }
    options.update(uvicorn_options)
    server = uvicorn.Server(uvicorn.Config(api, **options))
    stream = out or sys.stdout
    print(chosen.banner(host, port), file=stream, flush=True)
    await server.serve()
    return 0 if server.started else 1
