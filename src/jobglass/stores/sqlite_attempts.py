"""The writes of running attempts on SQLite: their feedback (progress, log rows) and their
ends, each a few statements per batch on the writer thread.

A mixin of `SQLiteStore` (its `_write`, named queries in `sql/sqlite.sql`); also the value
encoders the store shares with it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..json_codec import compact
from ..models import RunStatus
from .base import Feedback, Finish

T = TypeVar("T")
LOG_ROWS_PER_INSERT = 100  # x 8 columns stays far below SQLite's bound-parameter limit


def epoch_of(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


encode_json = compact


def json_text(value: Any) -> str | None:
    return None if value is None else encode_json(value)


def _log_rows(batches: Sequence[Feedback]) -> list[tuple[Any, ...]]:
    """`insert_log`'s rows for the batches' lines (LogLine tuples unpacked: a hot loop)."""
    enc = encode_json
    return [
        (rid, seq, att, lvl, stg, msg, None if ctx is None else enc(ctx), at)
        for fb in batches
        for rid, seq, lvl, stg, msg, ctx, at, att in fb.logs
    ]


class SQLiteAttemptWritesMixin:
    """`write_feedback` and `finish_runs` of the `Store` interface for SQLite."""

    if TYPE_CHECKING:
        q: dict[str, str]
        _insert_log_many: str

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    def _insert_logs(self, c: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Log rows 100 to a statement (multi-row VALUES: ~1.5x executemany's rate)."""
        full = len(rows) - len(rows) % LOG_ROWS_PER_INSERT
        many = self._insert_log_many
        for start in range(0, full, LOG_ROWS_PER_INSERT):
            chunk = rows[start : start + LOG_ROWS_PER_INSERT]
            c.execute(many, [value for row in chunk for value in row])
        if full < len(rows):
            c.executemany(self.q["insert_log"], rows[full:])

    async def write_feedback(self, batches: Sequence[Feedback]) -> list[bool]:
        return await self._write(lambda c: self._write_feedback(c, batches, time.time()))

    def _write_feedback(
        self, c: sqlite3.Connection, batches: Sequence[Feedback], now: float
    ) -> list[bool]:
        q = self.q
        accepted = []
        for fb in batches:
            last_seq = fb.logs[-1].seq if fb.logs else 0
            row = c.execute(
                q["update_feedback"],
                {
                    "run_id": fb.run_id,
                    "attempt": fb.attempt,
                    "stage": fb.stage,
                    "progress_current": fb.progress_current,
                    "progress_total": fb.progress_total,
                    "entity_type": fb.entity_type,
                    "progress_message": fb.progress_message,
                    "outcome": encode_json(fb.outcome),
                    "has_warnings": int(fb.has_warnings),
                    "log_seq": last_seq,
                    "summary": fb.summary,
                },
            ).fetchone()
            if row is None:
                accepted.append(False)
                continue
            if fb.logs:
                self._insert_logs(c, _log_rows([fb]))
            first = fb.logs[0].seq if fb.logs else 0
            c.execute(
                q["insert_event"],
                {
                    "run_id": fb.run_id,
                    "kind": "feedback",
                    "log_from": first,
                    "log_to": last_seq,
                    "now": now,
                },
            )
            accepted.append(True)
        return accepted

    async def finish_runs(
        self, finishes: Sequence[Finish], feedback: Sequence[Feedback] = ()
    ) -> list[bool]:
        def write(c: sqlite3.Connection) -> list[bool]:
            now = time.time()
            fed = {(fb.run_id, fb.attempt): fb for fb in feedback}
            ends = {(f.run_id, f.attempt) for f in finishes}
            if len(fed) < len(feedback) or not fed.keys() <= ends:
                self._write_feedback(c, feedback, now)  # not the worker's shape: in turn
                fed = {}
            return self._finish_runs(c, finishes, now, fed)

        return await self._write(write)

    def _finish_runs(
        self,
        c: sqlite3.Connection,
        finishes: Sequence[Finish],
        now: float,
        fed: dict[tuple[int, int], Feedback],
    ) -> list[bool]:
        """The ends in one UPDATE, with the last feedback of the attempts in `fed` (at most
        one each); then the log rows and events of the ends that passed the fence. The batch
        is staged in the writer's TEMP table `finish_batch`, ends with feedback and without in
        two `executemany`s."""
        if not finishes:
            return []
        first: dict[tuple[int, int], int] = {}  # a repeat in one call is refused
        plain: list[tuple[Any, ...]] = []
        with_feedback: list[tuple[Any, ...]] = []
        for i, f in enumerate(finishes):
            key = (f.run_id, f.attempt)
            if first.setdefault(key, i) != i:
                continue
            final = f.status != RunStatus.RETRYING
            end = (
                f.run_id,
                f.attempt,
                str(f.status),
                json_text(f.result),
                json_text(f.error),
                now if final else None,
                f.duration_ms,
                epoch_of(f.retry_at),
            )
            fb = fed.get(key)
            if fb is None:
                plain.append(end)
                continue
            with_feedback.append(
                (
                    *end,
                    1,
                    fb.stage,
                    fb.progress_current,
                    fb.progress_total,
                    fb.entity_type,
                    fb.progress_message,
                    encode_json(fb.outcome),
                    int(fb.has_warnings),
                    fb.logs[-1].seq if fb.logs else 0,
                    fb.summary,
                )
            )
        q = self.q
        c.execute(q["clear_finish_batch"])
        if plain:
            c.executemany(q["stage_finish"], plain)
        if with_feedback:
            c.executemany(q["stage_fed_finish"], with_feedback)
        rows = c.execute(q["finish_runs"]).fetchall()
        won = {(int(r[0]), int(r[1])) for r in rows}
        if won:
            fed_won = [fb for key, fb in fed.items() if key in won]
            if fed_won:
                self._insert_logs(c, _log_rows(fed_won))
                events = [
                    (fb.run_id, fb.logs[0].seq, fb.logs[-1].seq) if fb.logs else (fb.run_id, 0, 0)
                    for fb in fed_won
                ]
                c.execute(
                    self.q["insert_feedback_events"], {"events": encode_json(events), "now": now}
                )
            ids = sorted(run_id for run_id, _ in won)
            c.execute(self.q["insert_status_events"], {"run_ids": encode_json(ids), "now": now})
        keys = [(f.run_id, f.attempt) for f in finishes]
        return [first[key] == i and key in won for i, key in enumerate(keys)]
