"""`app.close()` gives up on a final write the database never answers, instead of hanging
the shutdown (seen as a 120 s teardown timeout in CI)."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from jobglass import app as app_module
from jobglass.app import JobGlass

pytestmark = pytest.mark.parametrize("store_url", ["postgres"], indirect=True)


async def test_close_gives_up_on_a_write_the_database_never_answers(
    store_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app_module, "CLOSE_TIMEOUT", 1.0)
    app = JobGlass(store_url)
    await app.open()
    blocker = await psycopg.AsyncConnection.connect(store_url)
    try:
        # another session holds app_logs: the app log's final COPY waits on the lock
        await blocker.execute("LOCK TABLE app_logs IN ACCESS EXCLUSIVE MODE")
        app.log.info("written at close")
        started = time.monotonic()
        await asyncio.wait_for(app.close(), 20)
        assert time.monotonic() - started < 10
        assert "writing the app log's last records did not finish within 1s" in caplog.text
        assert "stuck at" in caplog.text and "applog" in caplog.text
    finally:
        await blocker.rollback()
        await blocker.close()
