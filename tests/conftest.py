"""Shared fixtures. Keep one section per concern; add new sections below the existing ones.

Database URLs
    `sqlite_url`      a fresh SQLite file in `tmp_path`
    `postgres_url`    a fresh PostgreSQL database per test, copied from a template database
                      migrated once per session; dropped afterwards
    `store_url`       parametrized over both backends (test ids `sqlite` / `postgres`)

PostgreSQL comes from `JOBGLASS_TEST_POSTGRES_URL` (default below). When it is unreachable the
PostgreSQL tests are skipped, except in CI (`CI=true`) where they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

# -- database URLs: SQLite ----------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/jobglass.db"


# -- database URLs: PostgreSQL ------------------------------------------------------------------

POSTGRES_URL = os.environ.get(
    "JOBGLASS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass
class _PgServer:
    template: str | None = None  # the migrated template database; None: unreachable
    error: str | None = None
    # test databases are dropped in the background (a drop takes a while); waited for at the end
    dropper: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(4))
    drops: list[Future[None]] = field(default_factory=list)

    def drop_later(self, name: str) -> None:
        statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        self.drops.append(self.dropper.submit(_admin_execute, POSTGRES_URL, statement))

    def finish(self) -> None:
        self.dropper.shutdown(wait=True)
        for done in self.drops:
            done.result()  # a failed drop is reported, not hidden


def _replace_dbname(url: str, name: str) -> str:
    """`postgresql://user@host:port/db?opts` with another database name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _admin_execute(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        for statement in statements:
            conn.execute(statement)


def _migrate(url: str) -> None:
    """Migrate through the store itself, on a thread with its own event loop."""
    from jobglass.config import Settings
    from jobglass.stores import open_store

    async def run() -> None:
        store = open_store(Settings(database_url=url))
        await store.open()
        try:
            await store.migrate()
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def _pg_server() -> Iterator[_PgServer]:
    server = _PgServer()
    try:
        import psycopg
    except ImportError as err:  # pragma: no cover - the postgres extra is missing
        server.error = f"psycopg is not installed ({err})"
        yield server
        return
    template = f"jg_template_{uuid.uuid4().hex[:12]}"
    try:
        _admin_execute(POSTGRES_URL, f'CREATE DATABASE "{template}"')
    except psycopg.OperationalError as err:
        server.error = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        yield server
        return
    try:
        _migrate(_replace_dbname(POSTGRES_URL, template))
        # a template must have no connections when copied; forbid new ones from here on
        _admin_execute(POSTGRES_URL, f'ALTER DATABASE "{template}" WITH ALLOW_CONNECTIONS false')
        server.template = template
        yield server
    finally:
        try:
            server.finish()
        finally:
            _admin_execute(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')


@pytest.fixture
def postgres_url(_pg_server: _PgServer) -> Iterator[str]:
    if _pg_server.template is None:
        where = f"PostgreSQL not reachable at {_shown(POSTGRES_URL)}"
        hint = "set JOBGLASS_TEST_POSTGRES_URL to run these tests"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{where} ({_pg_server.error}); {hint}", pytrace=False)
        pytest.skip(f"{where}; {hint}")
    name = f"jg_test_{uuid.uuid4().hex[:16]}"
    _admin_execute(POSTGRES_URL, f'CREATE DATABASE "{name}" TEMPLATE "{_pg_server.template}"')
    try:
        yield _replace_dbname(POSTGRES_URL, name)
    finally:
        _pg_server.drop_later(name)


# -- database URLs: both backends ---------------------------------------------------------------


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgres"],
)
def store_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url
