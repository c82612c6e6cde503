"""Row decoding shared by both stores; each passes its own time and JSON decoders."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ..models import LogLine, RetryPolicy, Run, RunStatus
from .base import NewRun, WorkerInfo

TimeDecoder = Callable[[Any], datetime | None]


def epoch_to_dt(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo is UTC else value.astimezone(UTC)


_decode = json.JSONDecoder().decode  # json.loads checks its input's type on every call
_EMPTY: dict[str, Callable[[], Any]] = {"{}": dict, "[]": list, "null": lambda: None}


def from_json_text(value: Any) -> Any:
    """A JSON column (SQLite keeps text, PostgreSQL's jsonb arrives decoded)."""
    if value is None or not isinstance(value, str | bytes):
        return value
    empty = _EMPTY.get(value) if type(value) is str else None  # most runs' outcome, errors...
    if empty is not None:
        return empty()
    return _decode(value) if type(value) is str else json.loads(value)


@lru_cache(maxsize=256)
def _retry_policy(text: str) -> RetryPolicy:
    return RetryPolicy.from_json(_decode(text))


def retry_from(value: Any) -> RetryPolicy:
    """Runs of a job share a few policies: decode each text once."""
    if type(value) is str:
        return _retry_policy(value)
    return RetryPolicy.from_json(from_json_text(value))


_STATUSES = {str(s): s for s in RunStatus}


def status_of(value: str) -> RunStatus:
    """A stored status: a dict lookup (calling the enum by value took 1.1 us, as long as
    decoding a timestamp); an unknown value still raises the enum's ValueError."""
    found = _STATUSES.get(value)
    return RunStatus(value) if found is None else found


#: The stored fields of `Run`, in its order (all but `extra`): the columns a claim returns, in
#: this order, for `run_from_values` (tests/unit/test_queries.py pins both claim statements).
RUN_FIELDS = tuple(f.name for f in fields(Run) if f.name != "extra")


def run_from_values(values: Sequence[Any], t: TimeDecoder) -> Run:
    """A run from its `RUN_FIELDS` values, positionally: a claim's rows come as tuples in that
    order. A claimed SQLite row fetched and decoded this way took 20 us, against 34 us as a
    `sqlite3.Row` read by name (timeit, tenth session): keyword arguments and name lookups
    were most of a 44-field decode."""
    j = from_json_text
    (
        id_, job_name, queue, status, priority, params, attempt, max_attempts, retry, timeout,
        job_id, trigger, scope, algorithm_version, correlation_id, tenant_id, user_id,
        concurrency_key, run_at, created_at, started_at, finished_at, duration_ms,
        lease_expires_at, worker_id, cancel_requested, stage, progress_current, progress_total,
        entity_type, progress_message, outcome, summary, has_warnings, log_seq, result, error,
        errors, trace_context, schedule_name, fire_time, next_fire_time, keep_completed,
        keep_failed,
    ) = values  # fmt: skip
    return Run(
        int(id_), job_name, queue, status_of(status), int(priority), j(params) or {},
        int(attempt), int(max_attempts), retry_from(retry), timeout, job_id, trigger, scope,
        algorithm_version, correlation_id, tenant_id, user_id, concurrency_key, t(run_at),
        t(created_at), t(started_at), t(finished_at), duration_ms, t(lease_expires_at),
        worker_id, bool(cancel_requested), stage, int(progress_current), progress_total,
        entity_type, progress_message, j(outcome) or {}, summary, bool(has_warnings),
        int(log_seq), j(result), j(error), j(errors) or [], j(trace_context) or {}, {},
        schedule_name, t(fire_time), t(next_fire_time), keep_completed, keep_failed,
    )  # fmt: skip


def run_from_row(row: Mapping[str, Any], t: TimeDecoder) -> Run:
    """A run from a row read by column name (`SELECT *`)."""
    return run_from_values([row[name] for name in RUN_FIELDS], t)


def worker_from_row(row: Mapping[str, Any], t: TimeDecoder) -> WorkerInfo:
    return WorkerInfo(
        id=row["id"],
        hostname=row["hostname"],
        pid=row["pid"],
        queues=from_json_text(row["queues"]),
        concurrency=row["concurrency"],
        started_at=t(row["started_at"]),
        heartbeat_at=t(row["heartbeat_at"]),
        running=int(row["running"]),
    )


def log_from_row(row: Mapping[str, Any]) -> LogLine:
    """A stored log row; its `created_at` as epoch seconds (SQLite REAL, PostgreSQL float8)."""
    return LogLine(
        run_id=int(row["run_id"]),
        seq=int(row["seq"]),
        level=row["level"],
        stage=row["stage"],
        message=row["message"],
        context=from_json_text(row["context"]),
        at=float(row["created_at"]),
        attempt=int(row["attempt"]),
    )


def created_run(new: NewRun, row: Mapping[str, Any]) -> Run:
    """The Run a fresh insert stored: the input plus what the database decided (id, times).

    Equal to decoding the stored row (the contract tests check it), without reading it back.
    """
    running = new.start_running
    return Run(
        id=int(row["id"]),
        job_name=new.job_name,
        queue=new.queue,
        status=status_of(row["status"]),
        priority=new.priority,
        params=dict(new.params),
        attempt=1 if running else 0,
        max_attempts=new.retry.attempts,
        retry=new.retry,
        timeout=None if new.timeout is None else float(new.timeout),
        job_id=new.job_id,
        trigger=str(new.trigger),
        scope=str(new.scope),
        algorithm_version=new.algorithm_version,
        correlation_id=new.correlation_id,
        tenant_id=new.tenant_id,
        user_id=new.user_id,
        concurrency_key=new.concurrency_key,
        run_at=aware(row["run_at"]),
        created_at=aware(row["created_at"]),
        started_at=aware(row["started_at"]),
        lease_expires_at=aware(row["lease_expires_at"]),
        worker_id=new.worker_id if running else None,
        trace_context=dict(new.trace_context),
        schedule_name=new.schedule_name,
        fire_time=aware(new.fire_time),
        next_fire_time=aware(new.next_fire_time),
        keep_completed=new.keep_completed,
        keep_failed=new.keep_failed,
    )
