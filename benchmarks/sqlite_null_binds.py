"""What binding `None` costs Python's sqlite3, and what leaving NULL columns out saves.

    .venv/bin/python benchmarks/sqlite_null_binds.py [--rows 20000]

Prints microseconds per row (best of 5, one transaction each, in memory) for:
  - 8 columns bound as None / as ints / written as NULL literals;
  - an `app_logs` row of the SQLite schema (a job line: time, level, message, correlation id,
    context; 19 empty context columns) inserted binding all 23 columns, as the store did,
    and through `stores/sqlite_nulls.insert_filled`, as it does now (a file database with
    the table's indexes).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobglass.stores.applog_types import APP_COLUMNS
from jobglass.stores.sqlite_nulls import insert_filled

MIGRATION = (
    Path(__file__).resolve().parents[1] / "src/jobglass/stores/migrations/sqlite/0003_app_logs.sql"
)


def best_us(rows: int, write: Callable[[], None], c: sqlite3.Connection) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        c.execute("BEGIN")
        write()
        c.execute("COMMIT")
        best = min(best, time.perf_counter() - started)
    return best / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    n = parser.parse_args().rows

    c = sqlite3.connect(":memory:", isolation_level=None)
    c.execute("CREATE TABLE t (a, b, c, d, e, f, g, h)")
    marks = "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    print(f"sqlite3 {sqlite3.sqlite_version}, {n:,} rows per figure (best of 5)")
    for label, sql, row in (
        ("8 columns bound as None", marks, (None,) * 8),
        ("8 columns bound as int", marks, (1,) * 8),
        (
            "8 NULL literals",
            "INSERT INTO t VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            (),
        ),
    ):
        rows: list[tuple[Any, ...]] = [row] * n
        us = best_us(n, lambda sql=sql, rows=rows: c.executemany(sql, rows) and None, c)
        print(f"  {label:<40} {us:6.2f} us/row")

    context = '{"jobId":"123","jobType":"noop","userId":null,"attempt":1}'
    job_lines = [
        (time.time(), "info", "Job completed", None, f"cid-{i}", *[None] * 17, context)
        for i in range(n)
    ]
    assert len(job_lines[0]) == len(APP_COLUMNS)
    all_columns = (
        f"INSERT INTO app_logs ({', '.join(APP_COLUMNS)}) "  # noqa: S608 - the schema's names
        f"VALUES ({', '.join('?' * len(APP_COLUMNS))})"
    )
    ways: dict[str, Callable[[sqlite3.Connection], None]] = {
        "app_logs job line, all 23 bound": lambda db: (
            db.executemany(all_columns, job_lines) and None
        ),
        "app_logs job line, insert_filled": lambda db: insert_filled(
            db, "app_logs", APP_COLUMNS, job_lines
        ),
    }
    with tempfile.TemporaryDirectory() as folder:
        for label, write in ways.items():  # each on a fresh file: an index's size matters
            db = sqlite3.connect(f"{folder}/{label[-6:]}.db", isolation_level=None)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(MIGRATION.read_text())
            us = best_us(n, lambda db=db, write=write: write(db), db)
            print(f"  {label:<40} {us:6.2f} us/row")
            db.close()


if __name__ == "__main__":
    main()
