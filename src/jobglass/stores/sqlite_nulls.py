"""Inserts that bind no NULLs: Python's sqlite3 binds `None` twenty times slower than a value.

`sqlite3` adapts every parameter that is not an exact int, float, str or bytearray through
its adapter protocol first, `None` included: about 0.4 us each on this machine, against
0.04 us for an int (`benchmarks/sqlite_null_binds.py`). An app-log row has 19 optional
context columns, mostly empty: its NULLs cost more than the rest of its insert, on the
store's writer thread and under the GIL the event loop needs. A column left out of an
INSERT gets its default, NULL, at no cost; so consecutive rows that fill the same columns
share one `executemany` (rows keep their order, and so their ids).
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import compress, repeat
from typing import Any

_is_not = operator.is_not


@lru_cache(maxsize=256)
def _statement(table: str, columns: tuple[str, ...], filled: tuple[bool, ...], head: str) -> str:
    names = tuple(compress(columns, filled))
    if not names:
        return f"{head} {table} DEFAULT VALUES"
    marks = ", ".join("?" * len(names))
    return f"{head} {table} ({', '.join(names)}) VALUES ({marks})"


def insert_filled(
    c: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    head: str = "INSERT INTO",
) -> None:
    """`executemany` of `head table (columns) VALUES (...)`, each row's NULL columns left out.

    `table` and `columns` are the code's own names, never input. A NULL where a column's
    default is not NULL would change the row: use this only for columns whose default is
    NULL (or absent).
    """
    names = tuple(columns)
    filled_before: tuple[bool, ...] | None = None
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        filled = tuple(map(_is_not, row, repeat(None)))
        if filled != filled_before:  # consecutive rows alike share a statement; ids keep order
            if chunk:
                c.executemany(_statement(table, names, filled_before or (), head), chunk)
            chunk = []
            filled_before = filled
        chunk.append(tuple(compress(row, filled)))
    if chunk:
        c.executemany(_statement(table, names, filled_before or (), head), chunk)
