"""`jobglass demo`: one command, any directory, SQLite; alive at once; Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from e2e_stack import free_port

pytestmark = pytest.mark.slow


def test_demo_serves_works_schedules_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBGLASS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobglass", "demo", "--port", str(port),
         "--db", str(tmp_path / "demo.db")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    out = ""
    try:
        deadline = time.monotonic() + 30
        while "Press Ctrl-C" not in out:
            assert time.monotonic() < deadline and proc.poll() is None, out
            out += proc.stdout.readline()
        match = re.search(r"open\s+(http://127\.0\.0\.1:(\d+)/)\?token=(\S+)", out)
        assert match, out
        base, shown_port, token = match.groups()
        assert int(shown_port) == port
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            assert "<title>jobglass</title>" in http.get("/").text
            runs = http.get("/api/admin/jobs").json()["runs"]
            jobs = {r["jobName"] for r in runs}
            assert {"match-scores", "user-sync", "warehouse-export", "orphan-scan"} <= jobs
            schedules = http.get("/api/admin/schedules").json()["schedules"]
            assert [s["name"] for s in schedules] == ["health-check"]
            moving = None
            while moving is None:
                assert time.monotonic() < deadline + 30, "no demo run made progress"
                runs = http.get("/api/admin/jobs", params={"job": "match-scores"}).json()["runs"]
                moving = next((r for r in runs if r["progressCurrent"] > 0), None)
                time.sleep(0.2)
            assert moving["progressTotal"] == 5000
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()
        out += rest
    assert proc.returncode == 0, out
    assert "jobglass demo: stopped." in out
    assert "Traceback" not in out, out
