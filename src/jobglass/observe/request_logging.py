"""Request middleware for the app logger: context in, correlation id out, one line per request.

Per request, `RequestLoggingMiddleware` (ASGI) and `WSGIRequestLoggingMiddleware` (WSGI):

- extract the request's context once (`extract_request_context`: client IP behind trusted
  proxies, method, path, user agent, correlation id, user and session from the JWT, referer,
  request size) and leave it in the scope/environ, so `app.log.with_request(request)` in the
  handler reports the same correlation id even when it was generated here;
- bind the correlation id and user (`observe.context.bind`): every job enqueued while
  handling the request inherits them, as do `logging` records;
- make `app.log.current()` return a logger already bound to the request;
- echo `x-correlation-id` in the response (this takes the role of `CorrelationIdMiddleware`
  for apps that use it, and also sets `request.state.correlation_id`);
- optionally log the request with its metrics (bytes in and out, duration, status) through
  the app logger: info below 400, warning for 4xx, error for 5xx or an exception.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, MutableMapping
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from ..applog import REQUEST_CONTEXT_KEY, AppLogger, bound_logger
from .context import bind
from .request import RequestContextConfig, extract_request_context

if TYPE_CHECKING:
    from ..app import JobGlass

__all__ = ["RequestLoggingMiddleware", "WSGIRequestLoggingMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

HEADER = "x-correlation-id"
_HEADER_BYTES = HEADER.encode("latin-1")


class _Request:
    """What one request learned: its logger, and the metrics for its log line."""

    __slots__ = (
        "correlation_id",
        "declared_size",
        "logger",
        "method",
        "path",
        "received",
        "sent",
        "started",
        "status",
        "user_id",
    )

    def __init__(self, jobglass: JobGlass, info: dict[str, Any]) -> None:
        self.started = time.perf_counter()
        self.correlation_id: str = info["correlationId"]
        self.user_id: str | None = info.get("userId")
        self.method = info.get("method", "-")
        self.path = info.get("path", "-")
        self.declared_size: int | None = info.get("requestSize")
        self.logger: AppLogger = jobglass.log.with_request(_holder(info))
        self.received = 0
        self.sent = 0
        self.status: int | None = None

    def finish(self, error: BaseException | None = None) -> None:
        duration = (time.perf_counter() - self.started) * 1000
        size = self.declared_size if self.declared_size is not None else self.received
        logger = self.logger.with_request_metrics(size, self.sent, duration)
        status = self.status if self.status is not None else 500
        line = f"{self.method} {self.path} {status}"
        context: dict[str, Any] = {"statusCode": status}
        if error is not None:
            context["error"] = str(error) or type(error).__name__
            context["errorType"] = type(error).__name__
            logger.error(line, context)
        elif status >= 500:
            logger.error(line, context)
        elif status >= 400:
            logger.warning(line, context)
        else:
            logger.info(line, context)

    def bound(self) -> ExitStack:
        stack = ExitStack()
        stack.enter_context(bind(correlation_id=self.correlation_id, user_id=self.user_id))
        stack.enter_context(bound_logger(self.logger))
        return stack


def _holder(info: dict[str, Any]) -> dict[str, Any]:
    """A mapping `AppLogger.with_request` recognises as an already extracted request."""
    return {REQUEST_CONTEXT_KEY: info}


class RequestLoggingMiddleware:
    """`api.add_middleware(RequestLoggingMiddleware, jobglass=app)` or wrap any ASGI app."""

    def __init__(
        self,
        app: ASGIApp,
        jobglass: JobGlass,
        *,
        config: RequestContextConfig | None = None,
        log_requests: bool = True,
        skip_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.jobglass = jobglass
        self.config = config
        self.log_requests = log_requests
        self.skip_paths = frozenset(skip_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        config = self.config or self.jobglass.app_logs.request_config
        info = extract_request_context(scope, config)
        scope = dict(scope)
        scope[REQUEST_CONTEXT_KEY] = info
        state = scope.get("state")
        state = dict(state) if isinstance(state, MutableMapping) else {}
        state["correlation_id"] = info["correlationId"]
        scope["state"] = state
        req = _Request(self.jobglass, info)
        header = (_HEADER_BYTES, req.correlation_id.encode("latin-1"))
        start = "http.response.start" if kind == "http" else "websocket.accept"

        async def receive_counting() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                req.received += len(message.get("body") or b"")
            return message

        async def send_with_id(message: Message) -> None:
            kind_ = message.get("type")
            if kind_ == start:
                req.status = int(message.get("status", 200 if kind == "http" else 101))
                headers = [
                    (name, value)
                    for name, value in message.get("headers") or ()
                    if bytes(name).lower() != _HEADER_BYTES
                ]
                headers.append(header)
                message = {**message, "headers": headers}
            elif kind_ == "http.response.body":
                req.sent += len(message.get("body") or b"")
            await send(message)

        log = self.log_requests and kind == "http" and req.path not in self.skip_paths
        with req.bound():
            try:
                await self.app(scope, receive_counting, send_with_id)
            except BaseException as err:
                if log:
                    req.finish(err)
                raise
        if log:
            req.finish()


class WSGIRequestLoggingMiddleware:
    """`wsgi_app = WSGIRequestLoggingMiddleware(wsgi_app, jobglass=app)`.

    The context is bound while the app is called and while each chunk of its response is
    produced (WSGI responses may be generators); the request is logged when the server
    closes the response.
    """

    def __init__(
        self,
        app: WSGIApp,
        jobglass: JobGlass,
        *,
        config: RequestContextConfig | None = None,
        log_requests: bool = True,
        skip_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.jobglass = jobglass
        self.config = config
        self.log_requests = log_requests
        self.skip_paths = frozenset(skip_paths)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        config = self.config or self.jobglass.app_logs.request_config
        info = extract_request_context(environ, config)
        environ[REQUEST_CONTEXT_KEY] = info
        req = _Request(self.jobglass, info)
        log = self.log_requests and req.path not in self.skip_paths

        def start_with_id(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            try:
                req.status = int(status.split(" ", 1)[0])
            except ValueError:
                req.status = None
            headers = [(k, v) for k, v in headers if k.lower() != HEADER]
            headers.append((HEADER, req.correlation_id))
            write = start_response(status, headers, exc_info)

            def counting_write(data: bytes) -> object:
                req.sent += len(data)
                return write(data)

            return counting_write

        try:
            with req.bound():
                body = self.app(environ, start_with_id)
        except BaseException as err:
            if log:
                req.finish(err)
            raise
        return _Response(body, req, log)


class _Response:
    """Wraps a WSGI response: binds the request's context around each chunk, counts bytes,
    and logs the request when the server closes it."""

    def __init__(self, body: Iterable[bytes], req: _Request, log: bool) -> None:
        self._body = body
        self._iter: Iterator[bytes] | None = None
        self._req = req
        self._log = log
        self._error: BaseException | None = None
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iter is None:
            self._iter = iter(self._body)
        try:
            with self._req.bound():
                chunk = next(self._iter)
        except StopIteration:
            raise
        except BaseException as err:
            self._error = err
            raise
        self._req.sent += len(chunk)
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                with self._req.bound():
                    close()
        finally:
            if self._log:
                self._req.finish(self._error)
