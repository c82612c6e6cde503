"""Request-context extraction, exercised over real HTTP (uvicorn and wsgiref).

Three server flavours receive every request: a Starlette app (extraction from a
``starlette.requests.Request``), a bare ASGI app (extraction from the raw scope) and a WSGI
app (extraction from the environ).  The TCP peer is always loopback, so "trusted proxy"
cases trust 127.0.0.0/8 and spoofing cases leave it untrusted.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import pytest
from _servers import ipv6_available, run_asgi, run_wsgi
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jobglass.observe.request import (
    RequestContextConfig,
    extract_logging_context,
    extract_request_context,
    new_correlation_id,
)

HEX32 = re.compile(r"[0-9a-f]{32}")
HS_SECRET = "jobglass-integration-test-secret-0123456789"
LOOPBACK = "127.0.0.1"

PLAIN = RequestContextConfig()
# Trusts proxies, but not the loopback peer: every forwarding header is a spoof.
UNTRUSTED_PEER = RequestContextConfig(trusted_proxies=("10.0.0.0/8", "2001:db8:ffff::/48"))
TRUSTED = RequestContextConfig(trusted_proxies=("127.0.0.0/8", "10.0.0.0/8", "2001:db8:ffff::/48"))
HS = RequestContextConfig(jwt_key=HS_SECRET)
HS_AUD = RequestContextConfig(
    jwt_key=HS_SECRET, jwt_audience="jobglass", jwt_issuer="https://idp.example"
)
UNVERIFIED_AUD = RequestContextConfig(jwt_audience="jobglass")

ALL_KINDS = ["starlette", "asgi", "wsgi"]


# --------------------------------------------------------------------------- apps & servers


def starlette_app(config: RequestContextConfig) -> Starlette:
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse(extract_request_context(request, config))

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "PUT"])])


def raw_asgi_app(config: RequestContextConfig) -> Callable[..., Any]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = json.dumps(extract_request_context(scope, config)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def wsgi_app(config: RequestContextConfig) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = environ.get("CONTENT_LENGTH") or "0"
        if length.isdigit():
            environ["wsgi.input"].read(int(length))
        body = json.dumps(extract_request_context(environ, config)).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


Fetch = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def fetch() -> Iterator[Fetch]:
    """``fetch(kind, config, path, method=..., headers=..., content=..., host=...)`` -> JSON.

    Servers are started lazily, one per (kind, config, host), and live for the module.
    """
    with ExitStack() as stack:
        client = stack.enter_context(httpx.Client(trust_env=False, timeout=10))
        servers: dict[tuple[str, RequestContextConfig, str], str] = {}

        def base_url(kind: str, config: RequestContextConfig, host: str) -> str:
            key = (kind, config, host)
            if key not in servers:
                if kind == "starlette":
                    cm = run_asgi(starlette_app(config), host)
                elif kind == "asgi":
                    cm = run_asgi(raw_asgi_app(config), host)
                else:
                    cm = run_wsgi(wsgi_app(config), host)
                servers[key] = stack.enter_context(cm)
            return servers[key]

        def do_fetch(
            kind: str,
            config: RequestContextConfig = PLAIN,
            path: str = "/",
            *,
            method: str = "GET",
            headers: Any = None,
            content: bytes | None = None,
            host: str = LOOPBACK,
        ) -> dict[str, Any]:
            url = base_url(kind, config, host) + path
            response = client.request(method, url, headers=headers, content=content)
            assert response.status_code == 200, response.text
            data = response.json()
            assert isinstance(data, dict)
            return data

        yield do_fetch


# --------------------------------------------------------------------------- JWT helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: object) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "user-1", "sid": "sess-1", "iat": now, "exp": now + 300} | extra


def hs_token(payload: dict[str, Any], secret: str = HS_SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


def unsigned_token(payload: dict[str, Any], alg: str = "none") -> str:
    return f"{b64json({'alg': alg, 'typ': 'JWT'})}.{b64json(payload)}."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclasses.dataclass(frozen=True)
class RsaKeys:
    private: rsa.RSAPrivateKey
    public_pem: str
    other_private: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def rsa_keys() -> RsaKeys:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return RsaKeys(private, public_pem, other)


# --------------------------------------------------------------------------- basic fields


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_basic_fields(fetch: Fetch, kind: str) -> None:
    ctx = fetch(
        kind,
        path="/api/users?page=2",
        headers={"User-Agent": "jobglass-test/1.0", "Referer": "https://app.example/list"},
    )
    assert ctx["ipAddress"] == LOOPBACK
    assert ctx["method"] == "GET"
    assert ctx["path"] == "/api/users"
    assert ctx["userAgent"] == "jobglass-test/1.0"
    assert ctx["referer"] == "https://app.example/list"
    assert HEX32.fullmatch(ctx["correlationId"])
    for absent in ("userId", "sessionId", "jwtVerified", "requestSize"):
        assert absent not in ctx
    assert set(ctx) == {"ipAddress", "method", "path", "userAgent", "referer", "correlationId"}


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_request_size_and_method(fetch: Fetch, kind: str) -> None:
    posted = fetch(kind, path="/api/posts", method="POST", content=b"x" * 123)
    assert posted["method"] == "POST"
    assert posted["requestSize"] == 123
    empty = fetch(kind, method="PUT", content=b"", headers={"Content-Length": "0"})
    assert empty["method"] == "PUT"
    assert empty["requestSize"] == 0
    assert "requestSize" not in fetch(kind)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_non_ascii_path_is_decoded_the_same_everywhere(fetch: Fetch, kind: str) -> None:
    assert fetch(kind, path="/caf%C3%A9/%E2%9C%93")["path"] == "/café/✓"


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])  # Starlette's router won't match "\n"
def test_percent_encoded_control_chars_in_path_stay_escaped(fetch: Fetch, kind: str) -> None:
    assert fetch(kind, path="/a%0Ab%0D%0A%09c")["path"] == "/a%0Ab%0D%0A%09c"


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_missing_user_agent_is_omitted(fetch: Fetch, kind: str) -> None:
    # httpx always sends one, unless it is explicitly emptied.
    ctx = fetch(kind, headers={"User-Agent": ""})
    assert "userAgent" not in ctx


# --------------------------------------------------------------------------- client IP


SPOOF_HEADERS = [
    {"X-Forwarded-For": "6.6.6.6"},
    {"X-Real-IP": "6.6.6.6"},
    {"Forwarded": "for=6.6.6.6"},
    {"Forwarded": 'for="[2001:db8::66]:80"', "X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.7"},
]


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("config", [PLAIN, UNTRUSTED_PEER], ids=["no-proxies", "peer-untrusted"])
@pytest.mark.parametrize("headers", SPOOF_HEADERS)
def test_forwarding_headers_from_untrusted_peer_are_ignored(
    fetch: Fetch, kind: str, config: RequestContextConfig, headers: dict[str, str]
) -> None:
    assert fetch(kind, config, headers=headers)["ipAddress"] == LOOPBACK


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),
        # Right-most untrusted wins; the client-supplied left part is ignored.
        ({"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.0.0.2"}, "203.0.113.7"),
        # Every hop trusted: the left-most (furthest) one is the client.
        ({"X-Forwarded-For": "10.0.0.9, 10.0.0.2"}, "10.0.0.9"),
        # Garbage stops the walk at the last address we could vouch for.
        ({"X-Forwarded-For": "203.0.113.7, not-an-ip, 10.0.0.2"}, "10.0.0.2"),
        ({"X-Forwarded-For": "not-an-ip"}, LOOPBACK),
        ({"X-Forwarded-For": "203.0.113.7, , 10.0.0.2,"}, "203.0.113.7"),  # empty elements
        ({"X-Forwarded-For": "203.0.113.7:8080"}, "203.0.113.7"),
        ({"X-Forwarded-For": "[2001:db8::7]:1234"}, "2001:db8::7"),
        ({"X-Forwarded-For": "2001:DB8:0:0::7"}, "2001:db8::7"),
        ({"X-Forwarded-For": "::ffff:203.0.113.7"}, "203.0.113.7"),
        (
            [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "203.0.113.7, 10.0.0.2")],
            "203.0.113.7",
        ),
        (
            {"Forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2'},
            "2001:db8:cafe::17",
        ),
        ({"Forwarded": 'for=203.0.113.9, for="[2001:db8:ffff::1]"'}, "203.0.113.9"),
        ({"Forwarded": 'for="203.0.113.9:4711";by=10.0.0.1;proto=http'}, "203.0.113.9"),
        ({"Forwarded": 'For="[2001:db8::1]";host="a,b;c", for=10.0.0.5'}, "2001:db8::1"),
        ({"Forwarded": "for=203.0.113.9, for=unknown"}, LOOPBACK),
        ({"Forwarded": "for=203.0.113.9, for=_hidden, for=10.0.0.4"}, "10.0.0.4"),
        ({"Forwarded": "proto=https"}, LOOPBACK),
        ({"Forwarded": 'for="[2001:db8::1'}, LOOPBACK),
        # Forwarded beats X-Forwarded-For, which beats X-Real-IP.
        ({"Forwarded": "for=203.0.113.9", "X-Forwarded-For": "198.51.100.1"}, "203.0.113.9"),
        ({"X-Forwarded-For": "198.51.100.1", "X-Real-IP": "203.0.113.5"}, "198.51.100.1"),
        ({"X-Real-IP": "203.0.113.5"}, "203.0.113.5"),
        ({"X-Real-IP": "10.0.0.3"}, "10.0.0.3"),
        ({"X-Real-IP": "garbage"}, LOOPBACK),
    ],
)
def test_trusted_proxy_chains(fetch: Fetch, kind: str, headers: Any, expected: str) -> None:
    assert fetch(kind, TRUSTED, headers=headers)["ipAddress"] == expected


needs_ipv6 = pytest.mark.skipif(not ipv6_available(), reason="cannot bind ::1 on this machine")


@needs_ipv6
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_ipv6_peer(fetch: Fetch, kind: str) -> None:
    ctx = fetch(kind, host="::1", headers={"X-Forwarded-For": "6.6.6.6"})
    assert ctx["ipAddress"] == "::1"
    ctx = fetch(kind, UNTRUSTED_PEER, host="::1", headers={"Forwarded": "for=6.6.6.6"})
    assert ctx["ipAddress"] == "::1"


@needs_ipv6
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_trusted_ipv6_proxy(fetch: Fetch, kind: str) -> None:
    config = RequestContextConfig(trusted_proxies=("::1",))
    forwarded = {"Forwarded": 'for="[2001:db8::1]:4711"'}
    assert fetch(kind, config, host="::1", headers=forwarded)["ipAddress"] == "2001:db8::1"
    xff = {"X-Forwarded-For": "203.0.113.7, ::1"}
    assert fetch(kind, config, host="::1", headers=xff)["ipAddress"] == "203.0.113.7"
    # An IPv4-only trust list does not cover the IPv6 peer.
    assert fetch(kind, TRUSTED, host="::1", headers=forwarded)["ipAddress"] == "::1"


# --------------------------------------------------------------------------- correlation id


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_correlation_id_sources(fetch: Fetch, kind: str) -> None:
    ctx = fetch(kind, headers={"X-Correlation-ID": "corr-123.A:b"})
    assert ctx["correlationId"] == "corr-123.A:b"
    ctx = fetch(kind, headers={"X-Request-ID": "req-456"})
    assert ctx["correlationId"] == "req-456"
    both = {"X-Correlation-ID": "corr-1", "X-Request-ID": "req-1"}
    assert fetch(kind, headers=both)["correlationId"] == "corr-1"
    long_ok = "a" * 128
    assert fetch(kind, headers={"X-Request-ID": long_ok})["correlationId"] == long_ok


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_correlation_id_generated_when_absent(fetch: Fetch, kind: str) -> None:
    first = fetch(kind)["correlationId"]
    second = fetch(kind)["correlationId"]
    assert HEX32.fullmatch(first)
    assert HEX32.fullmatch(second)
    assert first != second


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize(
    "value",
    [
        "a" * 129,
        "x" * 5000,
        "abc def",
        "<script>alert(1)</script>",
        "id;rm -rf /",
        "caf\u00e9".encode().decode("latin-1"),  # raw UTF-8 bytes on the wire
        "abc\tdef",
        "abc%0Ainjected",
    ],
    ids=["129-chars", "5000-chars", "space", "html", "shell", "non-ascii", "tab", "pct-newline"],
)
def test_malicious_correlation_id_is_replaced(fetch: Fetch, kind: str, value: str) -> None:
    ctx = fetch(kind, headers=[("X-Correlation-ID", value.encode("latin-1"))])
    assert HEX32.fullmatch(ctx["correlationId"])
    # A bad correlation id falls through to a good request id.
    ctx = fetch(
        kind, headers=[("X-Correlation-ID", value.encode("latin-1")), ("X-Request-ID", "req-9")]
    )
    assert ctx["correlationId"] == "req-9"


# --------------------------------------------------------------------------- JWT identity


JWT_KINDS = ["starlette", "wsgi"]


@pytest.mark.parametrize("kind", JWT_KINDS)
@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer " + b64json({"alg": "HS256"}) + ".!!!.",
        "Bearer " + "a" * 9000 + ".b.c",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "bearer",
        "Token abc.def.ghi",
    ],
)
def test_garbage_authorization_is_ignored(fetch: Fetch, kind: str, authorization: str) -> None:
    for config in (PLAIN, HS):
        ctx = fetch(kind, config, headers={"Authorization": authorization})
        assert not {"userId", "sessionId", "jwtVerified"} & set(ctx)
        assert ctx["ipAddress"] == LOOPBACK


@pytest.mark.parametrize("kind", JWT_KINDS)
def test_unverified_token_is_read_but_marked(fetch: Fetch, kind: str) -> None:
    ctx = fetch(kind, PLAIN, headers=bearer(hs_token(claims(), "some-other-secret-" * 3)))
    assert ctx["userId"] == "user-1"
    assert ctx["sessionId"] == "sess-1"
    assert ctx["jwtVerified"] is False
    # Scheme is case-insensitive; extra whitespace is fine.
    ctx = fetch(kind, PLAIN, headers={"Authorization": "bearer   " + hs_token(claims())})
    assert ctx["userId"] == "user-1"


@pytest.mark.parametrize("kind", JWT_KINDS)
@pytest.mark.parametrize(
    "payload",
    [
        claims(exp=int(time.time()) - 60),
        claims(nbf=int(time.time()) + 3600),
    ],
    ids=["expired", "not-yet-valid"],
)
def test_out_of_date_tokens_are_dropped_even_unverified(
    fetch: Fetch, kind: str, payload: dict[str, Any]
) -> None:
    for config in (PLAIN, HS):
        ctx = fetch(kind, config, headers=bearer(hs_token(payload)))
        assert not {"userId", "sessionId", "jwtVerified"} & set(ctx)


@pytest.mark.parametrize("kind", JWT_KINDS)
@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_always_refused(fetch: Fetch, kind: str, alg: str) -> None:
    token = unsigned_token(claims(), alg)
    for config in (PLAIN, HS):
        ctx = fetch(kind, config, headers=bearer(token))
        assert not {"userId", "sessionId", "jwtVerified"} & set(ctx)


@pytest.mark.parametrize("kind", JWT_KINDS)
def test_hs256_verified(fetch: Fetch, kind: str) -> None:
    ctx = fetch(kind, HS, headers=bearer(hs_token(claims())))
    assert (ctx["userId"], ctx["sessionId"], ctx["jwtVerified"]) == ("user-1", "sess-1", True)
    # No audience configured: a token's aud claim is not held against it.
    ctx = fetch(kind, HS, headers=bearer(hs_token(claims(aud="anything"))))
    assert ctx["jwtVerified"] is True


@pytest.mark.parametrize("kind", JWT_KINDS)
def test_hs256_wrong_secret_is_refused(fetch: Fetch, kind: str) -> None:
    token = hs_token(claims(), "a-different-secret-that-is-long-enough!!")
    ctx = fetch(kind, HS, headers=bearer(token))
    assert not {"userId", "sessionId", "jwtVerified"} & set(ctx)


def tamper_payload(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    original = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64json(original | changes)}.{signature}"


def tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2  # not the last char, whose low bits may be padding
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


@pytest.mark.parametrize("kind", JWT_KINDS)
def test_tampered_tokens_are_refused_when_verifying(fetch: Fetch, kind: str) -> None:
    token = hs_token(claims())
    forged = tamper_payload(token, sub="admin")
    ctx = fetch(kind, HS, headers=bearer(forged))
    assert not {"userId", "sessionId", "jwtVerified"} & set(ctx)
    ctx = fetch(kind, HS, headers=bearer(tamper_signature(token)))
    assert not {"userId", "sessionId", "jwtVerified"} & set(ctx)
    # Without a key the same forgery is readable, but it says so.
    ctx = fetch(kind, PLAIN, headers=bearer(forged))
    assert (ctx["userId"], ctx["jwtVerified"]) == ("admin", False)


@pytest.mark.parametrize("kind", JWT_KINDS)
def test_rs256_verified_and_forgeries_refused(fetch: Fetch, kind: str, rsa_keys: RsaKeys) -> None:
    config = RequestContextConfig(jwt_key=rsa_keys.public_pem)
    good = jwt.encode(claims(), rsa_keys.private, algorithm="RS256")
    ctx = fetch(kind, config, headers=bearer(good))
    assert (ctx["userId"], ctx["sessionId"], ctx["jwtVerified"]) == ("user-1", "sess-1", True)

    wrong_key = jwt.encode(claims(), rsa_keys.other_private, algorithm="RS256")
    assert "userId" not in fetch(kind, config, headers=bearer(wrong_key))
    assert "userId" not in fetch(kind, config, headers=bearer(tamper_signature(good)))
    assert "userId" not in fetch(kind, config, headers=bearer(tamper_payload(good, sub="root")))
    expired = jwt.encode(claims(exp=int(time.time()) - 5), rsa_keys.private, algorithm="RS256")
    assert "userId" not in fetch(kind, config, headers=bearer(expired))


@pytest.mark.parametrize("kind", JWT_KINDS)
def test_algorithm_confusion_is_refused(fetch: Fetch, kind: str, rsa_keys: RsaKeys) -> None:
    # Attacker "signs" HS256 with the public PEM as the shared secret.
    config = RequestContextConfig(jwt_key=rsa_keys.public_pem)
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT'})}.{b64json(claims(sub='root'))}"
    mac = hmac.new(rsa_keys.public_pem.encode(), signing_input.encode(), hashlib.sha256)
    forged = f"{signing_input}.{b64url(mac.digest())}"
    ctx = fetch(kind, config, headers=bearer(forged))
    assert not {"userId", "sessionId", "jwtVerified"} & set(ctx)


@pytest.mark.parametrize("kind", JWT_KINDS)
@pytest.mark.parametrize(
    ("extra", "accepted"),
    [
        ({"aud": "jobglass", "iss": "https://idp.example"}, True),
        ({"aud": ["other", "jobglass"], "iss": "https://idp.example"}, True),
        ({"aud": "other", "iss": "https://idp.example"}, False),
        ({"iss": "https://idp.example"}, False),
        ({"aud": "jobglass", "iss": "https://evil.example"}, False),
        ({"aud": "jobglass"}, False),
    ],
    ids=["ok", "aud-list", "wrong-aud", "no-aud", "wrong-iss", "no-iss"],
)
def test_audience_and_issuer(
    fetch: Fetch, kind: str, extra: dict[str, Any], accepted: bool
) -> None:
    ctx = fetch(kind, HS_AUD, headers=bearer(hs_token(claims(**extra))))
    assert ("userId" in ctx) is accepted
    assert ctx.get("jwtVerified") is (True if accepted else None)


@pytest.mark.parametrize("kind", JWT_KINDS)
def test_unverified_mode_still_checks_configured_audience(fetch: Fetch, kind: str) -> None:
    ok = fetch(kind, UNVERIFIED_AUD, headers=bearer(hs_token(claims(aud="jobglass"))))
    assert (ok["userId"], ok["jwtVerified"]) == ("user-1", False)
    wrong = fetch(kind, UNVERIFIED_AUD, headers=bearer(hs_token(claims(aud="other"))))
    assert "userId" not in wrong


@pytest.mark.parametrize("kind", JWT_KINDS)
@pytest.mark.parametrize(
    ("payload", "user", "session"),
    [
        ({"userId": "u-2", "sessionId": "s-2"}, "u-2", "s-2"),
        ({"user_id": "u-3", "session_id": "s-3"}, "u-3", "s-3"),
        ({"uid": 42, "jti": "jti-1"}, "42", "jti-1"),
        ({"sub": "first", "userId": "second"}, "first", None),
        ({"sub": "line\nbreak", "uid": "fallback"}, "fallback", None),
        ({"uid": True, "sid": {"nested": 1}}, None, None),
        ({}, None, None),
    ],
)
def test_user_and_session_claim_fallbacks(
    fetch: Fetch, kind: str, payload: dict[str, Any], user: str | None, session: str | None
) -> None:
    ctx = fetch(kind, PLAIN, headers=bearer(hs_token(payload)))
    assert ctx.get("userId") == user
    assert ctx.get("sessionId") == session
    assert ctx["jwtVerified"] is False  # a JWT was read, even without usable claims


# --------------------------------------------------------------------------- other request shapes


def test_raw_asgi_scope() -> None:
    scope = {
        "type": "http",
        "method": "DELETE",
        "path": "/jobs/7",
        "client": ("10.0.0.2", 5000),
        "headers": [
            (b"x-forwarded-for", b"203.0.113.7"),
            (b"user-agent", b"ua/1"),
            (b"referer", b"https://r.example/"),
            (b"content-length", b"12"),
            (b"x-request-id", b"req-1"),
            (b"authorization", b"Bearer " + hs_token(claims()).encode()),
        ],
    }
    assert extract_request_context(scope, TRUSTED) == {
        "ipAddress": "203.0.113.7",
        "method": "DELETE",
        "path": "/jobs/7",
        "userAgent": "ua/1",
        "correlationId": "req-1",
        "userId": "user-1",
        "sessionId": "sess-1",
        "jwtVerified": False,
        "referer": "https://r.example/",
        "requestSize": 12,
    }


def test_websocket_scope_and_missing_client() -> None:
    ctx = extract_request_context({"type": "websocket", "path": "/ws", "headers": []})
    assert ctx["path"] == "/ws"
    assert "method" not in ctx  # ASGI websocket scopes carry no method
    assert "ipAddress" not in ctx
    assert HEX32.fullmatch(ctx["correlationId"])


def test_header_injection_with_newlines_is_neutralised() -> None:
    evil = b"abc\r\n2024-01-01 INFO admin logged in"
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "client": ("127.0.0.1", 1),
        "headers": [(b"x-correlation-id", evil), (b"user-agent", b"ua\nforged")],
    }
    ctx = extract_request_context(scope)
    assert HEX32.fullmatch(ctx["correlationId"])
    assert ctx["userAgent"] == "ua%0Aforged"
    environ = {"REQUEST_METHOD": "GET", "HTTP_X_REQUEST_ID": evil.decode(), "PATH_INFO": "/"}
    assert HEX32.fullmatch(extract_request_context(environ)["correlationId"])


def test_long_header_text_is_capped() -> None:
    environ = {"REQUEST_METHOD": "GET", "HTTP_USER_AGENT": "u" * 5000, "HTTP_REFERER": "r" * 5000}
    ctx = extract_request_context(environ)
    assert len(ctx["userAgent"]) == 1024
    assert len(ctx["referer"]) == 1024


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12), (" 7 ", 7), ("0", 0), ("-1", None), ("abc", None), ("1e3", None), ("", None)],
)
def test_request_size_parsing(value: str, expected: int | None) -> None:
    ctx = extract_request_context({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": value})
    assert ctx.get("requestSize") == expected


def test_conflicting_content_lengths_are_dropped() -> None:
    scope = {
        "type": "http",
        "headers": [(b"content-length", b"5"), (b"content-length", b"6")],
    }
    assert "requestSize" not in extract_request_context(scope)
    scope["headers"] = [(b"content-length", b"5"), (b"content-length", b"5")]
    assert extract_request_context(scope)["requestSize"] == 5


def test_flask_style_environ_object() -> None:
    environ = {
        "REQUEST_METHOD": "PATCH",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/items/1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_X_FORWARDED_FOR": "198.51.100.4",
        "HTTP_X_CORRELATION_ID": "flask-1",
        "HTTP_AUTHORIZATION": "Bearer " + hs_token(claims()),
    }
    ctx = extract_request_context(SimpleNamespace(environ=environ), HS)
    assert ctx == {
        "ipAddress": "127.0.0.1",  # peer not trusted by HS config
        "method": "PATCH",
        "path": "/app/items/1",
        "correlationId": "flask-1",
        "userId": "user-1",
        "sessionId": "sess-1",
        "jwtVerified": True,
    }


def test_django_style_meta_object() -> None:
    meta = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/caf\u00c3\u00a9",  # PEP 3333 bytes-as-latin-1
        "REMOTE_ADDR": "::ffff:127.0.0.1",
        "HTTP_X_REAL_IP": "203.0.113.8",
        "HTTP_USER_AGENT": "django-test",
        "CONTENT_LENGTH": "3",
    }
    request = SimpleNamespace(META=meta, method="GET")
    ctx = extract_request_context(request, TRUSTED)
    assert ctx["ipAddress"] == "203.0.113.8"
    assert ctx["path"] == "/café"
    assert ctx["userAgent"] == "django-test"
    assert ctx["requestSize"] == 3


class _Exploding:
    """Like a Werkzeug LocalProxy used outside a request: every attribute access raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("Working outside of request context.")


@pytest.mark.parametrize(
    "request_like",
    [
        None,
        42,
        "GET /",
        {},
        {"type": "lifespan"},
        SimpleNamespace(scope={"type": "lifespan"}),
        _Exploding(),
        {"type": "http", "headers": [None, (b"a",), (1, 2), (b"user-agent", None)], "client": 5},
        {"type": "http", "headers": 7, "path": 3, "method": None, "client": ("not-an-ip", 1)},
        {"REQUEST_METHOD": 1, "REMOTE_ADDR": None, "HTTP_USER_AGENT": b"bytes"},
    ],
    ids=lambda v: type(v).__name__,
)
def test_unsupported_or_broken_input_never_raises(request_like: object) -> None:
    ctx = extract_request_context(request_like)
    assert HEX32.fullmatch(ctx["correlationId"])
    assert not {"ipAddress", "userAgent", "userId"} & set(ctx)


def test_new_correlation_id() -> None:
    ids = {new_correlation_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(HEX32.fullmatch(i) for i in ids)


# --------------------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"trusted_proxies": ("10.0.0.0/8", "nope")}, ValueError),
        ({"trusted_proxies": "10.0.0.0/8"}, TypeError),
        ({"jwt_key": "short"}, ValueError),
        ({"jwt_key": HS_SECRET, "jwt_algorithms": ("RS256",)}, ValueError),
        ({"jwt_key": HS_SECRET, "jwt_algorithms": ("HS265",)}, ValueError),
        ({"jwt_algorithms": ("HS256", "none")}, ValueError),
        ({"jwt_key": HS_SECRET, "jwt_algorithms": ("HS512",)}, ValueError),  # needs 64 bytes
    ],
)
def test_misconfiguration_fails_fast(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        RequestContextConfig(**kwargs)


def test_config_accepts_lists_and_hides_the_key(rsa_keys: RsaKeys) -> None:
    config = RequestContextConfig(trusted_proxies=["::1", "10.0.0.0/8"])  # type: ignore[arg-type]
    assert config.trusted_proxies == ("::1", "10.0.0.0/8")
    assert HS_SECRET not in repr(RequestContextConfig(jwt_key=HS_SECRET))
    private_pem = rsa_keys.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ValueError, match="public key"):
        RequestContextConfig(jwt_key=private_pem)


# --------------------------------------------------------------------------- logging context


SEED_EXPECTED = {
    "sourceKey": "datasource-1",
    "sourceDisplayName": "PostgreSQL DB",
    "externalSystemKey": "system-1",
    "externalSystemDisplayName": "External API",
    "recordKey": "record-123",
    "recordDisplayName": "User Profile",
}


def test_logging_context_from_the_seed_example() -> None:
    ctx = extract_logging_context(
        source={
            "key": "datasource-1",
            "displayName": "PostgreSQL DB",
            "externalSystem": {"key": "system-1", "displayName": "External API"},
        },
        record={"key": "record-123", "displayName": "User Profile"},
    )
    assert ctx == SEED_EXPECTED


def test_logging_context_from_snake_case_dicts() -> None:
    ctx = extract_logging_context(
        source={
            "key": "datasource-1",
            "display_name": "PostgreSQL DB",
            "external_system": {"key": "system-1", "display_name": "External API"},
        },
        record={"key": "record-123", "display_name": "User Profile"},
    )
    assert ctx == SEED_EXPECTED


@dataclasses.dataclass
class ExternalSystem:
    key: str
    display_name: str


@dataclasses.dataclass
class Source:
    key: str
    display_name: str
    external_system: ExternalSystem | None = None


def test_logging_context_from_objects() -> None:
    source = Source("datasource-1", "PostgreSQL DB", ExternalSystem("system-1", "External API"))
    record = SimpleNamespace(key="record-123", displayName="User Profile")
    assert extract_logging_context(source=source, record=record) == SEED_EXPECTED


def test_logging_context_partial_and_non_string() -> None:
    assert extract_logging_context() == {}
    assert extract_logging_context(source={"key": 7}) == {"sourceKey": "7"}
    assert extract_logging_context(record=SimpleNamespace(key="r", displayName=None)) == {
        "recordKey": "r"
    }
    source = {"key": "", "displayName": "S", "externalSystem": None}
    assert extract_logging_context(source=source) == {"sourceDisplayName": "S"}
    mixed = SimpleNamespace(key="s", externalSystem={"displayName": "X"})
    assert extract_logging_context(source=mixed) == {
        "sourceKey": "s",
        "externalSystemDisplayName": "X",
    }
