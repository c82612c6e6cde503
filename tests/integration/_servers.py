"""Real HTTP servers in background threads, for tests that must go over the wire.

``run_asgi`` serves an ASGI app with uvicorn, ``run_wsgi`` a WSGI app with
``wsgiref.simple_server``.  Both bind a fresh ephemeral port (no races with other tests),
stay quiet, and shut down when the ``with`` block ends.

uvicorn runs with ``proxy_headers=False``: by default it rewrites ``scope["client"]`` from
``X-Forwarded-For`` for loopback peers, which would hide the real TCP peer from the app.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import uvicorn

__all__ = ["ipv6_available", "run_asgi", "run_wsgi"]

_STARTUP_TIMEOUT = 10.0


def ipv6_available() -> bool:
    """Whether this machine can bind ``::1`` (containers often disable IPv6)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def run_asgi(app: Any, host: str = "127.0.0.1", **uvicorn_options: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yield its base URL (``http://host:port``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {
        "log_config": None,  # don't reconfigure the test process's logging
        "access_log": False,
        "lifespan": "off",
        "ws": "none",
        "proxy_headers": False,
    }
    options.update(uvicorn_options)
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {host}:{port}")
            time.sleep(0.005)
        yield _base_url(host, port)
    finally:
        server.should_exit = True
        thread.join(timeout=_STARTUP_TIMEOUT)
        sock.close()


class _QuietHandler(WSGIRequestHandler):
    """wsgiref logs every request to stderr; tests don't want that noise."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(WSGIServer):
    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse-DNS lookup that can stall
        # for seconds in sandboxes; the numeric host is all the environ needs.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()


class _Server6(_Server):
    address_family = socket.AF_INET6


@contextmanager
def run_wsgi(app: Callable[..., Any], host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with wsgiref in a thread; yield its base URL (``http://host:port``)."""
    server_class = _Server6 if ":" in host else _Server
    server = server_class((host, 0), _QuietHandler)
    server.set_app(app)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"wsgiref:{server.server_port}",
        daemon=True,
    )
    thread.start()
    try:
        yield _base_url(host, server.server_port)
    finally:
        server.shutdown()
        thread.join(timeout=_STARTUP_TIMEOUT)
        server.server_close()
