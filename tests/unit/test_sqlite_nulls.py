"""`insert_filled` leaves each row's NULL columns out of its INSERT and keeps the rows' order."""

from __future__ import annotations

import sqlite3

from jobglass.stores.sqlite_nulls import insert_filled


def test_rows_land_as_given_in_order_with_their_nulls() -> None:
    c = sqlite3.connect(":memory:")
    c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c REAL, d TEXT)")
    rows = [
        ("x", 1, None, None),
        ("y", None, 2.5, None),
        ("z", 3, None, None),
        (None, None, None, None),
        ("w", 4, 1.0, "d"),
        ("v", 5, None, None),
    ]
    insert_filled(c, "t", ("a", "b", "c", "d"), rows)
    assert c.execute("SELECT a, b, c, d FROM t ORDER BY id").fetchall() == rows


def test_a_head_other_than_insert_into() -> None:
    c = sqlite3.connect(":memory:")
    c.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    insert_filled(c, "t", ("k", "v"), [("a", "1"), ("b", None)])
    insert_filled(c, "t", ("k", "v"), [("a", "2"), ("c", None)], head="INSERT OR IGNORE INTO")
    assert c.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [
        ("a", "1"),
        ("b", None),
        ("c", None),
    ]
