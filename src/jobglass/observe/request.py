"""Request-context extraction for logs: who called, from where, under which correlation id.

This is the Python side of the SDK's ``log.withRequest(req)``: it turns a Starlette/FastAPI
request, a raw ASGI scope, a WSGI environ, or a Flask/Django request into the seed's flat
camelCase fields.  Everything here runs on every logged request, reads attacker-controlled
headers, and must never break the request it describes, so it never raises, never trusts
proxy headers from untrusted peers, and only imports PyJWT when a bearer token shows up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..ids import new_correlation_id
from .client_ip import client_ip as _client_ip
from .client_ip import trusted_networks as _trusted_networks

__all__ = [
    "RequestContextConfig",
    "extract_logging_context",
    "extract_request_context",
    "new_correlation_id",
]


_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]*")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")
# C0/C1 control characters: the raw material of log injection ("\n2024-01-01 INFO forged").
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SAFE_CLAIM = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,256}")

_MAX_TOKEN_CHARS = 8192
_MAX_PATH_CHARS = 2048
_MAX_HEADER_TEXT_CHARS = 1024

# Only these headers are collected, so a request with hundreds of headers costs nothing extra.
_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "x-correlation-id",
    "x-request-id",
    "authorization",
    "user-agent",
    "referer",
    "content-length",
)
_WANTED = frozenset(_HEADERS)
# CGI puts Content-Length (and Content-Type) outside the HTTP_ namespace.
_ENVIRON_KEYS = {
    name: "HTTP_" + name.upper().replace("-", "_") for name in _HEADERS if name != "content-length"
} | {"content-length": "CONTENT_LENGTH"}


# --------------------------------------------------------------------------- config checks


def _public_key_object(key: str) -> object | None:
    """Load a PEM certificate's public key; None when ``key`` is not a certificate."""
    if "-----BEGIN CERTIFICATE-----" not in key:
        return None
    from cryptography import x509

    return x509.load_pem_x509_certificate(key.encode()).public_key()


@lru_cache(maxsize=16)
def _verification_keys(key: str, algorithms: tuple[str, ...]) -> Mapping[str, Any]:
    """Map each configured algorithm that fits ``key`` to a pre-parsed verification key.

    Pairing each algorithm with the key family it fits (HMAC secret vs PEM public key) is
    what stops algorithm confusion (an HS256 token "signed" with the public PEM), and
    parsing the PEM once keeps it off the per-request path.  Raises ``ValueError`` on a
    key that no algorithm accepts or one below RFC 7518 / NIST minimum strength.  Without
    PyJWT installed there is nothing to verify with, and the mapping is empty.
    """
    try:
        import jwt
        from jwt.algorithms import get_default_algorithms, requires_cryptography
    except ImportError:
        return {}
    try:
        material: object = _public_key_object(key) or key
    except (ImportError, ValueError) as exc:
        raise ValueError(f"jwt_key looks like a certificate but cannot be loaded: {exc}") from None
    known = get_default_algorithms()
    usable: dict[str, Any] = {}
    for alg in algorithms:
        if alg not in known:
            if alg in requires_cryptography:
                continue  # fine on a machine with `cryptography`; skipped here
            raise ValueError(f"jwt_algorithms contains unknown algorithm {alg!r}")
        algorithm = jwt.get_algorithm_by_name(alg)
        try:
            prepared = algorithm.prepare_key(material)
        except (jwt.InvalidKeyError, ValueError, TypeError):
            continue  # key belongs to another algorithm family
        if hasattr(prepared, "private_bytes"):
            raise ValueError("jwt_key must be a public key (or HMAC secret), not a private key")
        weakness = algorithm.check_key_length(prepared)
        if weakness:
            raise ValueError(f"jwt_key is too weak for {alg}: {weakness}")
        usable[alg] = prepared
    if not usable:
        raise ValueError(
            f"jwt_key cannot verify any of jwt_algorithms {algorithms!r} "
            "(HS* needs a shared secret, RS*/PS*/ES*/EdDSA a PEM public key)"
        )
    return usable


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class RequestContextConfig:
    """How much of a request to believe.

    ``trusted_proxies`` lists the load balancers/reverse proxies (IPs or CIDRs) whose
    forwarding headers are honoured; headers from anyone else are ignored because any
    client can send them.  With ``jwt_key`` the bearer token is verified; without one
    the claims are read for logging only and marked ``jwtVerified=False``.
    Misconfiguration (bad CIDR, key unusable with every listed algorithm, too-short HMAC
    secret) raises ``ValueError`` here, once, instead of silently dropping fields later.
    """

    trusted_proxies: tuple[str, ...] = ()
    jwt_key: str | None = field(default=None, repr=False)  # a secret: keep it out of logs
    jwt_algorithms: tuple[str, ...] = ("HS256", "RS256")
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    user_claims: tuple[str, ...] = ("sub", "userId", "user_id", "uid")
    session_claims: tuple[str, ...] = ("sid", "sessionId", "session_id", "jti")

    def __post_init__(self) -> None:
        for name in ("trusted_proxies", "jwt_algorithms", "user_claims", "session_claims"):
            value = getattr(self, name)
            if isinstance(value, str):
                # ("10.0.0.0/8") without the trailing comma is a str, not a tuple.
                raise TypeError(f"{name} must be a tuple of strings, got the str {value!r}")
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        _trusted_networks(self.trusted_proxies)
        if any(alg.strip().lower() == "none" for alg in self.jwt_algorithms):
            raise ValueError("jwt_algorithms must not contain 'none'")
        if self.jwt_key is not None:
            _verification_keys(self.jwt_key, self.jwt_algorithms)


_DEFAULT_CONFIG = RequestContextConfig()


def extract_request_context(
    request: object, config: RequestContextConfig = _DEFAULT_CONFIG
) -> dict[str, Any]:
    """Extract the seed's request fields (camelCase) from any supported request shape.

    Accepts a Starlette/FastAPI ``Request`` or ``WebSocket`` (``.scope``), a raw ASGI scope,
    a WSGI environ, or an object with ``.environ`` (Flask/Werkzeug) or ``.META`` (Django).
    Fields that cannot be determined are omitted.  ``correlationId`` is always present, so
    even an unrecognised request gets a usable id.  Never raises: logging must not be the
    reason a request fails.
    """
    try:
        view = _view_of(request)
        if view is not None:
            return _build(view, config)
    except Exception:  # last line of defence; see docstring
        pass
    return {"correlationId": new_correlation_id()}


def extract_logging_context(
    source: object | None = None, record: object | None = None
) -> dict[str, str]:
    """Flatten a data source and a record into the seed's indexed log fields.

    ``source`` and ``record`` may be dicts or objects, spelled camelCase or snake_case
    (``displayName``/``display_name``, ``externalSystem``/``external_system``).  Missing or
    empty parts are omitted; values are stringified so the fields index uniformly.
    """
    out: dict[str, str] = {}
    external = _member(source, "externalSystem", "external_system")
    for name, obj, names in (
        ("sourceKey", source, ("key",)),
        ("sourceDisplayName", source, ("displayName", "display_name")),
        ("externalSystemKey", external, ("key",)),
        ("externalSystemDisplayName", external, ("displayName", "display_name")),
        ("recordKey", record, ("key",)),
        ("recordDisplayName", record, ("displayName", "display_name")),
    ):
        value = _member(obj, *names)
        if value is not None:
            text = value if isinstance(value, str) else str(value)
            if text:
                out[name] = text
    return out


def _member(obj: object, *names: str) -> object:
    """First non-None item/attribute among ``names``; None when ``obj`` has none of them."""
    if obj is None:
        return None
    for name in names:
        try:
            value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        except Exception:  # a raising property must not break a log call
            value = None
        if value is not None:
            return value
    return None


# --------------------------------------------------------------------------- request shapes


@dataclass(frozen=True, slots=True)
class _View:
    """The handful of request facts we need, independent of ASGI/WSGI."""

    peer: str | None
    method: str | None
    path: str | None
    headers: dict[str, list[str]]

    def first(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    def joined(self, name: str) -> str | None:
        values = self.headers.get(name)
        return ",".join(values) if values else None


def _view_of(request: object) -> _View | None:
    """Detect the request shape by duck typing, so starlette/flask/django stay optional."""
    if isinstance(request, Mapping):
        if request.get("type") in ("http", "websocket"):
            return _view_of_scope(request)
        if "REQUEST_METHOD" in request:
            return _view_of_environ(request)
        return None
    scope = getattr(request, "scope", None)
    if isinstance(scope, Mapping) and scope.get("type") in ("http", "websocket"):
        return _view_of_scope(scope)
    for attr in ("environ", "META"):
        environ = getattr(request, attr, None)
        if isinstance(environ, Mapping):
            return _view_of_environ(environ)
    return None


def _view_of_scope(scope: Mapping[str, Any]) -> _View:
    headers: dict[str, list[str]] = {}
    raw = scope.get("headers")
    if isinstance(raw, Iterable):
        for item in raw:
            if not isinstance(item, list | tuple) or len(item) != 2:
                continue
            name = _text(item[0])
            if name is None:
                continue
            name = name.lower()
            if name in _WANTED:
                value = _text(item[1])
                if value is not None:
                    headers.setdefault(name, []).append(value)
    client = scope.get("client")
    peer = client[0] if isinstance(client, list | tuple) and client else None
    method = scope.get("method")
    path = scope.get("path")
    return _View(
        peer=peer if isinstance(peer, str) else None,
        method=method if isinstance(method, str) else None,
        path=path if isinstance(path, str) else None,
        headers=headers,
    )


def _view_of_environ(environ: Mapping[str, Any]) -> _View:
    headers: dict[str, list[str]] = {}
    for name, key in _ENVIRON_KEYS.items():
        value = environ.get(key)
        if value is None and name == "content-length":
            value = environ.get("HTTP_CONTENT_LENGTH")
        if isinstance(value, str):
            headers[name] = [_wsgi_text(value)]
    peer = environ.get("REMOTE_ADDR")
    method = environ.get("REQUEST_METHOD")
    script = environ.get("SCRIPT_NAME")
    path_info = environ.get("PATH_INFO")
    parts = [p for p in (script, path_info) if isinstance(p, str)]
    return _View(
        peer=peer if isinstance(peer, str) else None,
        method=method if isinstance(method, str) else None,
        path=_wsgi_text("".join(parts)) if parts else None,
        headers=headers,
    )


def _text(value: object) -> str | None:
    """ASGI header bytes to str: UTF-8 when valid, else latin-1 (which cannot fail)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return None


def _wsgi_text(value: str) -> str:
    """Undo PEP 3333's bytes-as-latin-1 so WSGI and ASGI report the same UTF-8 text."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _clean(value: str | None, limit: int) -> str | None:
    """Percent-escape control characters and cap length, so a field is one safe log token."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        value = value[:limit]
    return _CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", value)


# --------------------------------------------------------------------------- field assembly


def _build(view: _View, config: RequestContextConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ip = _client_ip(view, config.trusted_proxies)
    if ip is not None:
        out["ipAddress"] = ip
    method = _clean(view.method, 32)
    if method is not None:
        out["method"] = method
    path = _clean(view.path, _MAX_PATH_CHARS)
    if path is not None:
        out["path"] = path
    user_agent = _clean(view.first("user-agent"), _MAX_HEADER_TEXT_CHARS)
    if user_agent is not None:
        out["userAgent"] = user_agent
    out["correlationId"] = _correlation_id(view)
    out.update(_jwt_identity(view.first("authorization"), config))
    referer = _clean(view.first("referer"), _MAX_HEADER_TEXT_CHARS)
    if referer is not None:
        out["referer"] = referer
    size = _request_size(view.headers.get("content-length"))
    if size is not None:
        out["requestSize"] = size
    return out


def _correlation_id(view: _View) -> str:
    """First well-formed id from x-correlation-id then x-request-id; otherwise a new one.

    Anything outside ``[A-Za-z0-9._:-]{1,128}`` is rejected outright (not repaired), so a
    header can never smuggle newlines or megabytes into every log line of a request.
    """
    for name in ("x-correlation-id", "x-request-id"):
        value = view.first(name)
        if value is not None:
            value = value.strip()
            if _CORRELATION_ID.fullmatch(value):
                return value
    return new_correlation_id()


def _request_size(values: list[str] | None) -> int | None:
    """Content-Length as an int; absent when missing, malformed, or contradictory."""
    if not values:
        return None
    distinct = {v.strip() for v in values}
    if len(distinct) != 1:
        return None
    value = distinct.pop()
    return int(value) if _CONTENT_LENGTH.fullmatch(value) else None


# --------------------------------------------------------------------------- JWT identity


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or len(token) > _MAX_TOKEN_CHARS:
        return None
    return token if _BEARER_TOKEN.fullmatch(token) else None


def _jwt_identity(authorization: str | None, config: RequestContextConfig) -> dict[str, Any]:
    """userId/sessionId/jwtVerified from a bearer token; empty when there is no usable token.

    With ``config.jwt_key`` the signature, ``exp``, ``nbf`` and (when configured) audience
    and issuer are enforced.  Without it the claims are read unverified, but expired or
    not-yet-valid tokens and configured audience/issuer mismatches are still dropped.
    ``alg: none`` is refused in both modes.
    """
    token = _bearer_token(authorization)
    if token is None:
        return {}
    try:
        import jwt
    except ImportError:
        return {}
    try:
        alg = jwt.get_unverified_header(token).get("alg")
        if not isinstance(alg, str) or not alg or alg.lower() == "none":
            return {}
        check_aud = config.jwt_audience is not None
        if config.jwt_key is not None:
            key = _verification_keys(config.jwt_key, config.jwt_algorithms).get(alg)
            if key is None:
                return {}
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=config.jwt_audience,
                issuer=config.jwt_issuer,
                options={"verify_aud": check_aud},
            )
            verified = True
        else:
            claims = jwt.decode(
                token,
                audience=config.jwt_audience,
                issuer=config.jwt_issuer,
                options={
                    "verify_signature": False,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_aud": check_aud,
                    "verify_iss": config.jwt_issuer is not None,
                },
            )
            verified = False
    except Exception:  # malformed/forged/expired tokens are routine; never let them raise
        return {}
    out: dict[str, Any] = {}
    user = _claim(claims, config.user_claims)
    if user is not None:
        out["userId"] = user
    session = _claim(claims, config.session_claims)
    if session is not None:
        out["sessionId"] = session
    out["jwtVerified"] = verified
    return out


def _claim(claims: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    """First claim among ``names`` usable as a log field (string or integer, one line)."""
    for name in names:
        value = claims.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str) and _SAFE_CLAIM.fullmatch(value):
            return value
    return None
