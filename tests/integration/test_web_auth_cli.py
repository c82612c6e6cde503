"""`jobglass serve --host 0.0.0.0 --insecure` as a real subprocess: it binds every interface,
prints a one-time dev token, that token is an admin and nothing else gets in."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
APP_MODULE = """\
import os

from web_jobs import make_app

app = make_app(os.environ["JOBGLASS_DATABASE_URL"])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        port: int = sock.getsockname()[1]
        return port


def _outward_ipv4() -> str | None:
    """A non-loopback address of this machine (a UDP connect sends nothing), or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only, no packet leaves
            address: str = sock.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _listening_ipv4(port: int) -> set[str]:
    """Local addresses listening on `port` (TCP, IPv4), from /proc/net/tcp."""
    found: set[str] = set()
    table = Path("/proc/net/tcp")
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        host_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(host_hex)[::-1]))
    return found


def _wait_for(path: Path, pattern: str, proc: subprocess.Popen[bytes], within: float) -> str:
    deadline = time.monotonic() + within
    while True:
        text = path.read_text() if path.exists() else ""
        match = re.search(pattern, text)
        if match:
            return text
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {pattern!r} in the server's output: {text!r}")
        time.sleep(0.05)


def test_serve_insecure_on_all_interfaces_prints_a_working_dev_token(tmp_path: Path) -> None:
    (tmp_path / "serve_app.py").write_text(APP_MODULE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGLASS_")}
    env["JOBGLASS_DATABASE_URL"] = f"sqlite:///{tmp_path}/serve.db"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    port = _free_port()
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    command = [
        sys.executable, "-m", "jobglass.cli", "serve", "serve_app:app",
        "--host", "0.0.0.0", "--insecure", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=tmp_path)
    try:
        text = _wait_for(out_path, r"\?token=\S+\n", proc, within=30)
        assert "no authentication configured" in text, text
        assert "Dev admin token (valid 12 h, this run only)" in text, text
        # a 0.0.0.0 server is announced at a URL one can open: the loopback one
        match = re.search(rf"jobglass: open http://127\.0\.0\.1:{port}/\?token=(\S+)\n", text)
        assert match, text
        token = match.group(1)
        assert f"\n  {token}\n" in text  # the token alone on its line as well
        assert token.count(".") == 2  # a JWT

        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/api/health", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                assert proc.poll() is None, err_path.read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)

        # it listens on every interface, not only loopback
        if Path("/proc/net/tcp").exists():
            assert "0.0.0.0" in _listening_ipv4(port)
        outward = _outward_ipv4()
        bases = [base] + ([f"http://{outward}:{port}"] if outward else [])
        bearer = {"Authorization": f"Bearer {token}"}
        for url in bases:
            with httpx.Client(base_url=url + "/api/admin", timeout=10) as client:
                r = client.get("/me", headers=bearer)
                assert r.status_code == 200, (url, r.text)
                assert r.json()["identity"] == {
                    "subject": r.json()["identity"]["subject"],
                    "role": "admin",
                    "method": "jwt",
                }
                r = client.get("/me")
                assert r.status_code == 401, (url, r.text)
                assert r.headers["www-authenticate"] == "Bearer"
                assert r.json()["error"]["status"] == 401
                assert client.get("/jobs").status_code == 401
                tail = "BBBB" if token.endswith("AAAA") else "AAAA"
                wrong = {"Authorization": f"Bearer {token[:-4]}{tail}"}  # signature tampered
                assert client.get("/me", headers=wrong).status_code == 401
                assert client.get("/me", headers={"X-API-Key": token}).status_code == 401
                assert client.get("/jobs", headers=bearer).status_code == 200
        # the dev token is an admin: it may enqueue
        r = httpx.post(
            base + "/api/admin/jobs", json={"jobName": "web-demo"}, headers=bearer, timeout=10
        )
        assert r.status_code == 201, r.text
        assert r.json()["run"]["jobName"] == "web-demo"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn shuts down gracefully
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
                pytest.fail("the server did not stop within 20 s of SIGINT")
    # a clean stop: the CLI's Ctrl-C status, no traceback, the port released
    stderr = err_path.read_text()
    assert proc.returncode == 130, (proc.returncode, stderr)
    assert "Traceback" not in stderr, stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
