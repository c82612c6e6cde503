"""`CorrelationIdMiddleware`: one correlation id per HTTP request, carried into its jobs.

Pure ASGI (works under FastAPI, Starlette, or any ASGI server). The id comes from the
request's `x-correlation-id`, else `x-request-id`, when well formed
(`[A-Za-z0-9._:-]{1,128}`, anything else is replaced, never repaired), else a new one.
It is bound for the request (`current_correlation_id()`, log records, and every job
enqueued while handling it), stored as `scope["state"]["correlation_id"]`
(`request.state.correlation_id`), and echoed in the response header `x-correlation-id`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .context import bind
from .request import new_correlation_id

__all__ = ["CorrelationIdMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_INCOMING = (b"x-correlation-id", b"x-request-id")


class CorrelationIdMiddleware:
    """`app = CorrelationIdMiddleware(app)` or `api.add_middleware(CorrelationIdMiddleware)`."""

    def __init__(self, app: ASGIApp, header: str = "x-correlation-id") -> None:
        self.app = app
        self.header = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        correlation_id = _incoming(scope.get("headers") or ()) or new_correlation_id()
        state = scope.setdefault("state", {})
        if isinstance(state, MutableMapping):
            state["correlation_id"] = correlation_id
        header = (self.header, correlation_id.encode("latin-1"))
        start = "http.response.start" if kind == "http" else "websocket.accept"

        async def send_with_id(message: Message) -> None:
            if message.get("type") == start:
                headers = [
                    (name, value)
                    for name, value in message.get("headers") or ()
                    if name.lower() != self.header
                ]
                headers.append(header)
                message = {**message, "headers": headers}
            await send(message)

        with bind(correlation_id=correlation_id):
            await self.app(scope, receive, send_with_id)


def _incoming(headers: Any) -> str | None:
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        key = bytes(name).lower()
        if key in _INCOMING and key not in found:
            found[key] = bytes(value)
    for key in _INCOMING:
        raw = found.get(key)
        if raw is None:
            continue
        try:
            text = raw.decode("latin-1").strip()
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
            continue
        if _VALID.fullmatch(text):
            return text
    return None
