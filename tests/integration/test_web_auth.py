"""Authentication and authorization of the admin API and the stream, over real connections."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.exceptions import ConnectionClosed

from jobglass.web.auth import AuthConfig, make_dev_token, parse_api_keys

# auth does not depend on the backend: these run on SQLite only
sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

SECRET = "jobglass-web-test-secret-0123456789abcdef"  # the conftest's WEB_SECRET
ROOT = Path(__file__).resolve().parents[2]


def _rsa_pair() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public.decode()


def _claims(role: Any = "admin", ttl: int = 300, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "someone", "role": role, "iat": now, "exp": now + ttl, **extra}


def _b64(data: dict[str, Any]) -> str:
    import base64

    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def _status(stack: Any, token: str | None, method: str = "GET", path: str = "/jobs") -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient(base_url=stack.api_base, timeout=10) as client:
        r = await client.request(method, path, headers=headers, json={"jobName": "web-demo"})
    if r.status_code in (401, 403):
        assert r.json()["error"]["status"] == r.status_code
    if r.status_code == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    return r.status_code


@sqlite_only
async def test_roles_tokens_and_api_keys(
    make_web_stack: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stack = make_web_stack(worker=False, server_options={"access_log": True})
    admin, viewer = stack.token("admin"), stack.token("viewer")
    assert await _status(stack, None) == 401
    assert await _status(stack, "garbage") == 401
    assert await _status(stack, viewer) == 200
    assert await _status(stack, admin) == 200
    assert await _status(stack, viewer, "POST") == 403
    assert await _status(stack, admin, "POST") == 201
    assert await _status(stack, viewer, "POST", "/jobs/1/cancel") == 403
    assert await _status(stack, viewer, "POST", "/jobs/1/retry") == 403
    assert await _status(stack, viewer, "DELETE", "/jobs/1") == 403
    assert await _status(stack, viewer, "POST", "/schedules/x/pause") == 403
    assert await _status(stack, stack.token(["viewer", "admin"]), "POST") == 201
    assert await _status(stack, stack.token("ADMIN"), "POST") == 201
    assert await _status(stack, stack.token("superadmin"), "POST") == 201
    assert await _status(stack, stack.token("guest")) == 403
    assert await _status(stack, stack.token(None)) == 403

    expired = jwt.encode(_claims(ttl=-60), SECRET, algorithm="HS256")
    assert await _status(stack, expired) == 401
    no_exp = jwt.encode({"sub": "x", "role": "admin"}, SECRET, algorithm="HS256")
    assert await _status(stack, no_exp) == 401
    wrong_key = jwt.encode(_claims(), "another-secret-0123456789abcdef0123", algorithm="HS256")
    assert await _status(stack, wrong_key) == 401
    head, _, sig = viewer.split(".")
    tampered = f"{head}.{_b64(_claims('admin'))}.{sig}"  # a viewer promoting itself
    assert await _status(stack, tampered) == 401
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    assert await _status(stack, unsigned) == 401
    unsigned_caps = f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{_b64(_claims())}."
    assert await _status(stack, unsigned_caps) == 401
    hs512 = jwt.encode(_claims(), SECRET * 2, algorithm="HS512")
    assert await _status(stack, hs512) == 401

    async with httpx.AsyncClient(base_url=stack.api_base, timeout=10) as client:
        r = await client.get("/jobs", headers={"X-API-Key": "admin-key-0123456789"})
        assert r.status_code == 200
        r = await client.post(
            "/jobs", headers={"X-API-Key": "viewer-key-0123456789"}, json={"jobName": "web-demo"}
        )
        assert r.status_code == 403
        r = await client.get("/jobs", headers={"Authorization": "Bearer admin-key-0123456789"})
        assert r.status_code == 200
        r = await client.get("/jobs", headers={"X-API-Key": "admin-key-012345678"})
        assert r.status_code == 401
        r = await client.get("/jobs", params={"token": admin})  # query tokens: streams only
        assert r.status_code == 401
        r = await client.get("/stream/sse")
        assert r.status_code == 401 and r.json()["error"]["status"] == 401
        r = await client.get("/me", headers={"Authorization": f"Bearer {viewer}"})
        assert r.json()["identity"]["role"] == "viewer"

        async with client.stream("GET", "/stream/sse", params={"token": viewer}) as r:
            assert r.status_code == 200
    async with stack.ws("") as ws:  # ?token=<admin> in the URL
        assert json.loads(await ws.recv())["type"] == "hello"
    server_side = ("jobglass", "uvicorn", "fastapi", "starlette")
    records = [r for r in caplog.records if r.name.startswith(server_side)]
    logged = "\n".join(record.getMessage() for record in records)
    assert "token=[redacted]" in logged  # the stream URLs were logged, without the token
    for secret in (admin, viewer, expired, tampered, "admin-key-0123456789", SECRET):
        assert secret not in logged


@sqlite_only
async def test_rs256_issuer_audience_and_algorithm_confusion(make_web_stack: Any) -> None:
    key, public = _rsa_pair()
    other, _ = _rsa_pair()
    auth = AuthConfig(
        jwt_public_key=public, jwt_issuer="https://idp.example", jwt_audience="jobglass"
    )
    stack = make_web_stack(worker=False, auth=auth)
    good = _claims(iss="https://idp.example", aud="jobglass")
    assert await _status(stack, jwt.encode(good, key, algorithm="RS256")) == 200
    assert await _status(stack, jwt.encode(good, other, algorithm="RS256")) == 401
    bad_iss = {**good, "iss": "https://evil.example"}
    assert await _status(stack, jwt.encode(bad_iss, key, algorithm="RS256")) == 401
    bad_aud = {**good, "aud": "someone-else"}
    assert await _status(stack, jwt.encode(bad_aud, key, algorithm="RS256")) == 401
    # HS256 signed with the public key text: the classic confusion attack
    import hashlib
    import hmac

    header = _b64({"alg": "HS256", "typ": "JWT"})
    body = _b64(good)
    mac = hmac.new(public.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    import base64

    forged = f"{header}.{body}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert await _status(stack, forged) == 401
    nested = AuthConfig(jwt_public_key=public, role_claim="realm_access.roles")
    nested_stack = make_web_stack(worker=False, auth=nested)
    token = jwt.encode(
        {**_claims(role=None), "realm_access": {"roles": ["admin"]}}, key, algorithm="RS256"
    )
    assert await _status(nested_stack, token, "POST") == 201


@sqlite_only
async def test_stream_refuses_before_sending_anything(make_web_stack: Any) -> None:
    stack = make_web_stack(worker=False)

    async def close_of(query: str, role: str | None = None, **kw: Any) -> tuple[int, str]:
        async with stack.ws(query, role=role, **kw) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd is not None
        return info.value.rcvd.code, info.value.rcvd.reason

    code, reason = await close_of("")
    assert code == 4401 and "missing credentials" in reason
    code, reason = await close_of("token=not-a-token")
    assert code == 4401
    expired = jwt.encode(_claims(ttl=-10), SECRET, algorithm="HS256")
    assert (await close_of(f"token={expired}"))[0] == 4401
    assert (await close_of("", role="guest"))[0] == 4403
    code, reason = await close_of("level=shouting", role="viewer")
    assert code == 4400 and "level" in reason
    assert (await close_of("after=5", role="viewer"))[0] == 4400
    assert (await close_of("runId=987654", role="viewer"))[0] == 4404
    async with stack.ws("", role="viewer") as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello" and hello["role"] == "viewer"
    viewer_key = {"X-API-Key": "viewer-key-0123456789"}
    async with stack.ws("", role=None, additional_headers=viewer_key) as ws:
        assert json.loads(await ws.recv())["role"] == "viewer"
    headers = {"Authorization": f"Bearer {stack.token('admin')}"}
    async with stack.ws("", role=None, additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["role"] == "admin"


@sqlite_only
async def test_nothing_configured_refuses_everything(make_web_stack: Any) -> None:
    stack = make_web_stack(worker=False, auth=AuthConfig())
    async with httpx.AsyncClient(base_url=stack.api_base, timeout=10) as client:
        r = await client.get("/jobs", headers={"Authorization": f"Bearer {stack.token()}"})
    assert r.status_code == 401 and "not configured" in r.json()["error"]["message"]


def test_config_from_env_and_helpers() -> None:
    env = {
        "JOBGLASS_JWT_SECRET": "s3cret",
        "JOBGLASS_JWT_ISSUER": "https://idp",
        "JOBGLASS_JWT_AUDIENCE": "jobglass",
        "JOBGLASS_API_KEYS": "key1:admin, key2:viewer,key3",
    }
    config = AuthConfig.from_env(env)
    assert config.jwt_secret == "s3cret" and config.jwt_issuer == "https://idp"
    assert config.api_keys == {"key1": "admin", "key2": "viewer", "key3": "admin"}
    assert config.enabled and not AuthConfig.from_env({}).enabled
    assert parse_api_keys("a:b:admin") == {"a:b": "admin"}
    with pytest.raises(ValueError, match="role"):
        AuthConfig(api_keys={"k": "root"})
    with pytest.raises(ValueError, match="algorithm"):
        AuthConfig(jwt_secret="x", jwt_algorithms=("none",))
    key = "k" * 40
    claims = jwt.decode(make_dev_token(key, ttl=60), key, algorithms=["HS256"])
    assert claims["role"] == "admin" and claims["exp"] - claims["iat"] == 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_cli_dev_token_and_loopback_guard(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGLASS_")}
    env["JOBGLASS_DATABASE_URL"] = f"sqlite:///{tmp_path}/serve.db"
    cli = [sys.executable, "-m", "jobglass.cli", "serve", "web_jobs:make_app"]
    refused = subprocess.run(
        [*cli[:-1], "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "refusing to serve on 0.0.0.0" in refused.stderr
    port = _free_port()
    here = str(Path(__file__).parent)
    proc = subprocess.Popen(
        [*cli[:-1], "--port", str(port), "--log-level", "warning"],
        env={**env, "PYTHONPATH": here},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        text = "".join(lines)
        match = re.search(rf"http://127\.0\.0\.1:{port}/\?token=(\S+)", text)
        assert match, text
        token = match.group(1)
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/admin/me",
                    headers={"Authorization": f"Bearer {token}"},
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["identity"]["role"] == "admin"
        assert httpx.get(f"http://127.0.0.1:{port}/api/admin/me").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
