"""How the PostgreSQL store reads rows."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader


def dict_cursor(conn: AsyncConnection[Any]) -> AsyncCursor[dict[str, Any]]:
    """Dict rows, and JSONB as text: `rows.from_json_text` decodes it (a JSON string too)."""
    cur = conn.cursor(row_factory=dict_row)
    cur.adapters.register_loader("jsonb", TextLoader)
    return cur
