"""Store selection by URL: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Store

if TYPE_CHECKING:
    from ..config import Settings


def open_store(settings: Settings) -> Store:
    url = settings.database_url
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresStore
        except ImportError as err:  # pragma: no cover - depends on extras
            raise RuntimeError(
                "PostgreSQL needs the postgres extra: pip install 'jobglass[postgres]'"
            ) from err
        return PostgresStore(url, pool_size=settings.pool_size)
    from .sqlite import SQLiteStore

    return SQLiteStore(url)


__all__ = ["Store", "open_store"]
