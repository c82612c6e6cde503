"""Fixtures of the queue tests: real worker processes on a fresh database (both backends).

`qenv` gives a `QueueEnv`: the test's database URL, an open app (`qenv.app`, the jobs of
`qjobs.py`), a record file the jobs append to, and helpers to start `jobglass worker`
processes, run CLI commands and wait for runs. Every process a test started is killed when
the test ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qhelpers import QueueEnv
from qjobs import RECORD_ENV, make_app


@contextlib.asynccontextmanager
async def _queue_env(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[QueueEnv]:
    record = tmp_path / "record.jsonl"
    # hooks fired in this process (e.g. cancelling a queued run) record too
    monkeypatch.setenv(RECORD_ENV, str(record))
    app = make_app(url)
    await app.open()
    env = QueueEnv(url, app, tmp_path, record)
    try:
        yield env
    finally:
        await asyncio.get_running_loop().run_in_executor(None, env.stop_all)
        await app.close()


@pytest.fixture
async def qenv(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[QueueEnv]:
    """Both backends (test ids `sqlite` / `postgres`)."""
    async with _queue_env(store_url, tmp_path, monkeypatch) as env:
        yield env


@pytest.fixture
async def pg_qenv(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[QueueEnv]:
    """PostgreSQL only."""
    async with _queue_env(postgres_url, tmp_path, monkeypatch) as env:
        yield env
