"""How the PostgreSQL store reads rows."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import TupleRow, dict_row, tuple_row
from psycopg.types.string import TextLoader


def dict_cursor(conn: AsyncConnection[Any]) -> AsyncCursor[dict[str, Any]]:
    """Dict rows, and JSONB as text: `rows.from_json_text` decodes it (a JSON string too)."""
    cur = conn.cursor(row_factory=dict_row)
    cur.adapters.register_loader("jsonb", TextLoader)
    return cur


def tuple_cursor(conn: AsyncConnection[Any]) -> AsyncCursor[TupleRow]:
    """Tuple rows (read by position: `rows.run_from_values`), and JSONB as text."""
    cur = conn.cursor(row_factory=tuple_row)
    cur.adapters.register_loader("jsonb", TextLoader)
    return cur
