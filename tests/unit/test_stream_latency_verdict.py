"""benchmarks/stream_latency.py judges honestly: a backend that cannot run fails the benchmark
(never "skipped" with exit 0), and clients that missed lines fail it as well."""

from __future__ import annotations

import importlib.util
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "stream_latency.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stream_latency_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(**changes: Any) -> dict[str, Any]:
    result = {
        "clients": 50,
        "complete_clients": 50,
        "lines": 2000,
        "samples": 100_000,
        "logger_p50": 60.0,
        "logger_p99": 120.0,
        "commit_p50": 5.0,
        "commit_p99": 12.0,
        "commit_mean": 6.0,
    }
    return {**result, **changes}


def test_verdict(bench: ModuleType) -> None:
    assert bench._verdict("sqlite", _result(), 2000) == []
    assert bench._verdict("postgres", _result(), 2000) == []
    assert bench._verdict("sqlite", _result(logger_p99=300.0), 2000) == []  # the target itself
    problems = bench._verdict("sqlite", _result(complete_clients=48), 2000)
    assert problems == ["2/50 clients missed lines"]
    assert bench._verdict("sqlite", _result(lines=1990), 2000) == [
        "the run stored 1990 of 2000 lines"
    ]
    assert bench._verdict("postgres", _result(logger_p99=151.0), 2000) == [
        "logger->client p99 over 150 ms"
    ]
    assert bench._verdict("sqlite", _result(commit_p99=25.5), 2000) == [
        "commit->client p99 over 25 ms"
    ]
    # no samples at all: NaN percentiles meet no target
    assert math.isnan(bench._pct([], 99))
    nothing = _result(complete_clients=0, samples=0, logger_p99=math.nan, commit_p99=math.nan)
    assert len(bench._verdict("sqlite", nothing, 2000)) == 3


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting is refused at once


def test_a_backend_that_cannot_start_fails_the_run() -> None:
    env = {
        **os.environ,
        "JOBGLASS_TEST_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{_closed_port()}/test",
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--backends", "postgres", "--clients", "1", "--lines", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "postgres  FAILED: could not run the benchmark (OperationalError:" in done.stdout
    assert done.stdout.rstrip().endswith("stream latency: FAILED")
    assert "skipped" not in done.stdout


def test_bad_arguments_are_refused() -> None:
    for args in (["--backends", "mysql"], ["--backends", ""], ["--clients", "0"]):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "error:" in done.stderr
