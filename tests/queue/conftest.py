"""Fixtures of the queue tests: real worker processes on a fresh database (both backends).

`qenv` gives a `QueueEnv`: the test's database URL, an open app (`qenv.app`, the jobs of
`qjobs.py`), a record file the jobs append to, and helpers to start `jobglass worker`
processes, run CLI commands and wait for runs. Every process a test started is killed when
the test ends, whatever happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qhelpers import QueueEnv
from qjobs import RECORD_ENV, make_app


@pytest.fixture
async def qenv(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[QueueEnv]:
    record = tmp_path / "record.jsonl"
    # hooks fired in this process (e.g. cancelling a queued run) record too
    monkeypatch.setenv(RECORD_ENV, str(record))
    app = make_app(store_url)
    await app.open()
    env = QueueEnv(store_url, app, tmp_path, record)
    try:
        yield env
    finally:
        await asyncio.get_running_loop().run_in_executor(None, env.stop_all)
        await app.close()
