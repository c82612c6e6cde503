"""Creating runs on PostgreSQL: a mixin of `PostgresStore` (its pool and named queries).

A batch goes one of three ways, all in one transaction (the caller's with `conn=`), each
announcing its new runs (`pg_notify` on `jobglass_events`) and waking each queue once
(`jobglass_wakeup`), delivered on commit:

- up to `INSERT_CHUNK` runs: one `insert_runs` statement (`INSERT ... SELECT FROM unnest`
  of typed arrays), in a variant derived from the named query (`insert_variants`);
- more, with job_ids or runs that start RUNNING: `INSERT_CHUNK`-run statements pipelined;
- `COPY_MIN` or more queued runs without job_ids: `COPY` (`_copy_runs`).

Measured in benchmarks/README.md (fifth and sixth sessions).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any, LiteralString, cast

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from ..models import Run
from . import pg_batch as pb
from .base import Created, NewRun
from .pg_cursor import dict_cursor
from .queries import trusted as _literal
from .rows import aware, created_run, run_from_row

Row = dict[str, Any]

#: Rows per INSERT of a big `create_runs` batch (pipelined, see `_insert_chunks`).
INSERT_CHUNK = 1000
#: A `create_runs` batch of at least this many queued runs without job_ids goes by COPY
#: (`_copy_runs`); below, its four round trips cost more than COPY saves.
COPY_MIN = 500
#: Lines per `write` of a COPY batch (~250 kB of text for runs with small params).
COPY_CHUNK = 1000
#: `insert_runs`' source of rows: its typed arrays, unnested in input order.
_UNNEST = re.compile(
    r"FROM unnest\((?P<args>[^;]*?)\)\s+WITH ORDINALITY AS r\((?P<names>[^)]*)\)\s+ORDER BY r\.ord"
)
#: One array parameter of `insert_runs` (`%(name)b::type[]`).
_ARRAY_PARAM = re.compile(r"(%\(\w+\)b::\w+)\[\]")


def one_row_source(insert: str) -> str:
    """`insert` taking one run's values as scalars: `FROM (SELECT $1::text AS job_name, ...)`
    instead of unnesting one-element arrays, whose function scan took 0.12 of the statement's
    0.43 ms (EXPLAIN ANALYZE). One `app.enqueue`, the two variants alternated in one process
    (tenth session): 1.105 -> 1.014 ms back to back, 2.057 -> 1.986 ms 20 ms apart."""
    found = _UNNEST.search(insert)
    if found is None:
        raise ValueError("insert_runs: its unnest(...) WITH ORDINALITY AS r(...) source changed")
    args = [a.strip() for a in found["args"].split(",")]
    names = [n.strip() for n in found["names"].split(",")]
    if names[-1] != "ord" or len(args) != len(names) - 1:
        raise ValueError("insert_runs: the unnest's arrays and its column names do not pair")
    scalars = [m[1] for a in args if (m := _ARRAY_PARAM.fullmatch(a))]
    if len(scalars) < len(args):
        raise ValueError("insert_runs: every unnested value must be a typed array parameter")
    columns = ", ".join(f"{v} AS {n}" for v, n in zip(scalars, names[:-1], strict=True))
    return insert[: found.start()] + f"FROM (SELECT {columns}) AS r" + insert[found.end() :]


def insert_variants(insert: str) -> dict[tuple[bool, bool], LiteralString]:
    """`insert_runs` for each kind of batch, keyed (with job_ids, one run).

    The `ON CONFLICT` clause's arbiter index holds only job_ids: a batch without any cannot
    conflict, and the clause's speculative insertion cost 2-4 us a row. One run's values go
    as scalars (`one_row_source`).
    """
    start, end = insert.index("ON CONFLICT (job_id)"), insert.index("DO NOTHING")
    plain = insert[:start] + insert[end + len("DO NOTHING") :]
    return {
        (True, False): _literal(insert),
        (False, False): _literal(plain),
        (True, True): _literal(one_row_source(insert)),
        (False, True): _literal(one_row_source(plain)),
    }


class PostgresRunCreationMixin:
    """`create_runs` of the `Store` interface for PostgreSQL."""

    q: dict[str, LiteralString]
    _inserts: dict[tuple[bool, bool], LiteralString]

    if TYPE_CHECKING:

        def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...
        async def _fetch(
            self, conn: AsyncConnection[Any], name: str, args: Any = None
        ) -> list[Row]: ...

    async def create_runs(self, runs: Sequence[NewRun], *, conn: Any = None) -> list[Created]:
        """The batch in one transaction (one statement for most batches; see the module's
        docstring for the others), plus a read of the live runs that job_ids hit.

        With `conn` (the caller's connection, maybe inside its transaction) the runs and their
        wake-ups exist only if the caller commits; an autocommit connection outside a
        transaction gets a transaction of its own.
        """
        if not runs:
            return []
        by_copy = len(runs) >= COPY_MIN and not any(
            n.job_id is not None or n.start_running for n in runs
        )
        create = self._copy_runs if by_copy else self._create
        if conn is None:
            async with self.connection() as own:
                if not by_copy and len(runs) <= INSERT_CHUNK:
                    return await create(own, runs)  # one statement: a transaction of its own
                async with own.transaction():
                    return await create(own, runs)
        if not isinstance(conn, AsyncConnection):
            raise TypeError(f"conn must be a psycopg AsyncConnection, got {type(conn).__name__}")
        if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
            async with conn.transaction():
                return await create(conn, runs)
        return await create(conn, runs)

    async def _copy_runs(self, conn: AsyncConnection[Any], runs: Sequence[NewRun]) -> list[Created]:
        """A big batch of queued runs without job_ids, by COPY, in the caller's transaction.

        Nothing can conflict, so nothing needs to come back but ids: the batch reserves them
        (and reads the transaction's `now()`) first, then COPY takes the rows in chunks (the
        server stores one while the client writes the next), then the wake-ups and
        announcements `insert_runs` would have sent. Each `Run` is made when first read
        (`Created.later`). Measured in benchmarks/README.md (sixth and ninth sessions).
        """
        cur = dict_cursor(conn)
        await cur.execute(self.q["reserve_run_ids"], {"count": len(runs)})
        reserved = await cur.fetchone()
        assert reserved is not None
        now: datetime = reserved["now"].astimezone(UTC)
        ids: list[int] = sorted(reserved["ids"])
        lines = pb.copy_run_lines(ids, runs, now)
        async with cur.copy(self.q["copy_runs"]) as copy:
            while chunk := "".join(islice(lines, COPY_CHUNK)):
                await copy.write(chunk.encode())
        await cur.execute(
            self.q["announce_runs"],
            {
                "queues": list(dict.fromkeys(n.queue for n in runs)),
                "payloads": pb.payloads(pb.status_entries(ids)),
            },
        )
        return [
            Created.later(run_id, partial(_queued_run, new, run_id, now))
            for run_id, new in zip(ids, runs, strict=True)
        ]

    async def _create(self, conn: AsyncConnection[Any], runs: Sequence[NewRun]) -> list[Created]:
        out: list[Created | None] = [None] * len(runs)
        pending = list(range(len(runs)))
        for _ in range(3):  # a conflicting run may finish before we read it: insert again
            conflicted = await self._insert_chunks(conn, runs, pending, out)
            if not conflicted:
                break
            created = {
                c.run.job_id: c.run for c in out if c is not None and c.created and c.run.job_id
            }
            wanted = sorted({j for i in conflicted if (j := runs[i].job_id)} - created.keys())
            live = dict(created)
            if wanted:
                found = await self._fetch(conn, "live_runs_by_job_ids", {"job_ids": wanted})
                live.update({r["job_id"]: run_from_row(r, aware) for r in found})
            pending = []
            for i in conflicted:
                run = live.get(runs[i].job_id or "")
                if run is None:
                    pending.append(i)
                else:
                    out[i] = Created(run, False)
            if not pending:
                break
        if any(c is None for c in out):
            raise RuntimeError("create_runs: job_id conflict did not settle, try again")
        return cast(list[Created], out)

    async def _insert_chunks(
        self,
        conn: AsyncConnection[Any],
        runs: Sequence[NewRun],
        pending: list[int],
        out: list[Created | None],
    ) -> list[int]:
        """Insert `pending` (indexes into `runs`); return the ones a live job_id refused.

        A big batch goes as `INSERT_CHUNK`-row statements in pipeline mode (the caller holds
        a transaction): the client encodes the next chunk and decodes the last one's rows
        while the server inserts, on two cores instead of one after the other. Measured with
        10,000-row batches (`benchmarks/queue_throughput.py`): see benchmarks/README.md.
        """
        if len(pending) <= INSERT_CHUNK:
            cur = dict_cursor(conn)
            await cur.execute(*self._insert(runs, pending))
            return self._match_inserted(runs, pending, await cur.fetchall(), out)
        chunks = [pending[i : i + INSERT_CHUNK] for i in range(0, len(pending), INSERT_CHUNK)]
        conflicted: list[int] = []
        async with conn.pipeline():
            cursors = []
            for chunk in chunks:
                cur = dict_cursor(conn)
                await cur.execute(*self._insert(runs, chunk))
                cursors.append(cur)
            for chunk, cur in zip(chunks, cursors, strict=True):
                conflicted += self._match_inserted(runs, chunk, await cur.fetchall(), out)
        return conflicted

    def _insert(self, runs: Sequence[NewRun], pending: list[int]) -> tuple[LiteralString, Any]:
        """The statement and parameters that insert `pending` (indexes into `runs`)."""
        columns = pb.run_columns([runs[i] for i in pending])
        with_job_ids = any(runs[i].job_id is not None for i in pending)
        one = len(pending) == 1
        params = {name: values[0] for name, values in columns.items()} if one else columns
        return self._inserts[(with_job_ids, one)], params

    @staticmethod
    def _match_inserted(
        runs: Sequence[NewRun], pending: list[int], rows: list[Row], out: list[Created | None]
    ) -> list[int]:
        """Pair inserted rows (ids grow in input order) with inputs; return the conflicted."""
        conflicted = []
        pos = 0
        for i in pending:
            row = rows[pos] if pos < len(rows) else None
            if row is not None and row["job_id"] == runs[i].job_id:
                assert row["job_name"] == runs[i].job_name
                out[i] = Created(created_run(runs[i], row), True)
                pos += 1
            else:
                conflicted.append(i)
        assert pos == len(rows), "inserted rows not matched to inputs"
        return conflicted


def _queued_run(new: NewRun, run_id: int, now: datetime) -> Run:
    """The `Run` that `_copy_runs` stored for `new`."""
    row = {
        "id": run_id,
        "status": "QUEUED",
        "run_at": now if new.run_at is None else new.run_at,
        "created_at": now,
        "started_at": None,
        "lease_expires_at": None,
    }
    return created_run(new, row)
