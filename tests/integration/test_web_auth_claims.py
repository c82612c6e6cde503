"""HS256 tokens with issuer and audience configured: wrong or missing `iss`/`aud` get 401,
on the HTTP routes and on the stream, over real connections."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from jobglass.web.auth import AuthConfig

# auth does not depend on the backend: these run on SQLite only
sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

SECRET = "hs256-issuer-audience-secret-0123456789abcdef"
ISSUER = "https://idp.example"
AUDIENCE = "jobglass"


def _token(drop: tuple[str, ...] = (), secret: str = SECRET, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": "someone",
        "role": "admin",
        "iat": now,
        "exp": now + 300,
        "iss": ISSUER,
        "aud": AUDIENCE,
        **claims,
    }
    for name in drop:
        del body[name]
    return jwt.encode(body, secret, algorithm="HS256")


async def _call(stack: Any, token: str, method: str = "GET", path: str = "/me") -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.api_base, timeout=10) as client:
        body = {"jobName": "web-demo"} if method == "POST" else None
        r = await client.request(method, path, headers=headers, json=body)
    if r.status_code == 401:
        assert r.headers["www-authenticate"] == "Bearer"
        error = r.json()["error"]
        assert error["status"] == 401
        return 401, str(error["message"])
    return r.status_code, ""


@sqlite_only
async def test_hs256_issuer_and_audience_are_checked(make_web_stack: Any) -> None:
    auth = AuthConfig(jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    stack = make_web_stack(worker=False, auth=auth)

    good = _token()
    assert await _call(stack, good) == (200, "")
    assert await _call(stack, good, "GET", "/jobs") == (200, "")
    assert await _call(stack, good, "POST", "/jobs") == (201, "")
    assert await _call(stack, _token(aud=["other", AUDIENCE])) == (200, "")  # aud may be a list
    assert await _call(stack, _token(role="viewer"), "POST", "/jobs") == (403, "")

    refused: list[tuple[str, str]] = [
        (_token(iss="https://evil.example"), "wrong issuer"),
        (_token(iss=ISSUER + "/"), "wrong issuer"),  # no normalization: exact match only
        (_token(iss=ISSUER.upper()), "wrong issuer"),
        (_token(aud="someone-else"), "wrong audience"),
        (_token(aud=["someone-else", "another"]), "wrong audience"),
        (_token(aud=AUDIENCE.upper()), "wrong audience"),
        (_token(drop=("iss",)), "missing claim 'iss'"),
        (_token(drop=("aud",)), "missing claim 'aud'"),
        (_token(drop=("iss", "aud")), "missing claim"),
        # right claims, wrong key: still refused
        (_token(secret="another-secret-0123456789abcdef0123456789"), "bad signature"),
    ]
    for token, reason in refused:
        for method, path in (("GET", "/me"), ("GET", "/jobs"), ("POST", "/jobs")):
            status, message = await _call(stack, token, method, path)
            assert status == 401, (reason, method, path, status)
            assert reason in message, (reason, message)
    # nothing was enqueued by a refused token: only the one good POST made a run
    async with httpx.AsyncClient(base_url=stack.api_base, timeout=10) as client:
        runs = (await client.get("/jobs", headers={"Authorization": f"Bearer {good}"})).json()
    assert len(runs["runs"]) == 1

    # the stream refuses the same tokens before sending anything, and takes the good one
    for token, _ in refused[:1] + refused[3:4] + refused[6:8]:
        async with connect(f"{stack.ws_base}?token={token}", open_timeout=10) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4401
    async with connect(f"{stack.ws_base}?token={good}", open_timeout=10) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello" and hello["role"] == "admin"
    async with httpx.AsyncClient(base_url=stack.api_base, timeout=10) as client:
        r = await client.get("/stream/sse", params={"token": refused[0][0]})
        assert r.status_code == 401


@sqlite_only
async def test_hs256_without_issuer_or_audience_configured(make_web_stack: Any) -> None:
    """Unconfigured, `iss` and `aud` are not checked: whatever the token says is accepted."""
    stack = make_web_stack(worker=False, auth=AuthConfig(jwt_secret=SECRET))
    assert await _call(stack, _token(iss="https://anyone.example", aud="anything")) == (200, "")
    assert await _call(stack, _token(drop=("iss", "aud"))) == (200, "")
    # only the issuer configured: aud is not required, iss is
    stack = make_web_stack(worker=False, auth=AuthConfig(jwt_secret=SECRET, jwt_issuer=ISSUER))
    assert await _call(stack, _token(drop=("aud",))) == (200, "")
    status, message = await _call(stack, _token(drop=("iss",)))
    assert status == 401 and "missing claim 'iss'" in message
    status, message = await _call(stack, _token(iss="https://evil.example"))
    assert status == 401 and "wrong issuer" in message
