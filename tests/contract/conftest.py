"""The store under contract: a fresh, migrated database of each backend per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jobglass.config import Settings
from jobglass.stores import Store, open_store


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = open_store(Settings(database_url=store_url))
    await s.open()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()
