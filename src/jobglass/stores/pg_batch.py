"""Parameter building for the PostgreSQL store's batch queries, and its NOTIFY payloads.

Everything here is plain Python (no I/O): batches become one JSONB recordset or a few typed
arrays, so a whole batch is one statement. PostgreSQL refuses NUL characters in text and
JSONB, so they are replaced (U+FFFD) instead of failing a whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ..json_codec import compact
from ..models import RetryPolicy, RunStatus
from .base import NEW_RUN_COLUMNS, Feedback, Finish, NewRun

#: NOTIFY payloads must stay below 8000 bytes; keep a margin.
PAYLOAD_LIMIT = 7900
EVENTS_CHANNEL = "jobglass_events"
WAKEUP_CHANNEL = "jobglass_wakeup"
REPLACEMENT = "\ufffd"


def iso(value: datetime | None) -> str | None:
    """A JSON-safe aware time (a naive one is taken as local time, as `timestamp()` does)."""
    return None if value is None else value.astimezone(UTC).isoformat()


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", REPLACEMENT)
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Compact JSON that PostgreSQL accepts (no \\u0000 escapes)."""
    text = compact(value)
    if "\\u0000" in text:
        text = compact(_scrub(value))
    return text


def dumps_or_none(value: Any) -> str | None:
    return None if value is None else dumps(value)


def text(value: str | None) -> str | None:
    return value if value is None or "\x00" not in value else value.replace("\x00", REPLACEMENT)


# -- create_runs ----------------------------------------------------------------------------


def utc(value: datetime | None) -> datetime | None:
    """An aware UTC time (a naive one is taken as local time, as `timestamp()` does)."""
    return None if value is None else value.astimezone(UTC)


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


@lru_cache(maxsize=256)
def _retry_json(policy: RetryPolicy) -> str:
    return dumps(policy.to_json())


def run_columns(runs: Sequence[NewRun]) -> dict[str, list[Any]]:
    """`insert_runs`'s arrays, one per column (the statement fills the `now()` parts)."""
    return {
        "job_name": [n.job_name for n in runs],
        "queue": [n.queue for n in runs],
        "running": [n.start_running for n in runs],
        "priority": [n.priority for n in runs],
        "run_at": [utc(n.run_at) for n in runs],
        "job_id": [n.job_id for n in runs],
        "params": [dumps(n.params) for n in runs],
        "max_attempts": [n.retry.attempts for n in runs],
        "retry": [_retry_json(n.retry) for n in runs],
        "timeout": [_float(n.timeout) for n in runs],
        "trigger": [str(n.trigger) for n in runs],
        "scope": [str(n.scope) for n in runs],
        "algorithm_version": [n.algorithm_version for n in runs],
        "correlation_id": [n.correlation_id for n in runs],
        "tenant_id": [n.tenant_id for n in runs],
        "user_id": [n.user_id for n in runs],
        "concurrency_key": [n.concurrency_key for n in runs],
        "trace_context": [dumps(n.trace_context) if n.trace_context else None for n in runs],
        "lease_seconds": [float(n.lease_seconds) for n in runs],
        "worker_id": [n.worker_id for n in runs],
        "schedule_name": [n.schedule_name for n in runs],
        "fire_time": [utc(n.fire_time) for n in runs],
        "next_fire_time": [utc(n.next_fire_time) for n in runs],
        "keep_completed": [n.keep_completed for n in runs],
        "keep_failed": [n.keep_failed for n in runs],
    }


#: The columns of `copy_runs` (sql/postgres.sql) that `copy_run_lines` fills, in order (the
#: others keep their defaults: no job_id, attempt 0, not started).
COPY_COLUMNS = (
    "id",
    *(
        c
        for c in NEW_RUN_COLUMNS
        if c not in ("job_id", "attempt", "started_at", "lease_expires_at", "worker_id")
    ),
)


def copy_run_lines(ids: Sequence[int], runs: Sequence[NewRun], now: datetime) -> Iterator[str]:
    """Each queued run's `COPY_COLUMNS` as a line of COPY's text format: what `insert_runs`
    stores for it (the server parses each value as its column's type).

    The runs of a batch mostly differ in their params and correlation ids only: the text of
    the other columns is made once per stretch of runs that share their values, and a line is
    one f-string: 3.5-4 us a row, where a tuple of values through psycopg's text
    `write_row` took 7.8.
    """
    shared: tuple[Any, ...] | None = None
    head = middle = tail = ""
    for run_id, n in zip(ids, runs, strict=True):
        values = (
            n.job_name,
            n.queue,
            n.priority,
            n.run_at,
            n.retry,
            n.timeout,
            n.trigger,
            n.scope,
            n.algorithm_version,
            n.tenant_id,
            n.user_id,
            n.concurrency_key,
            n.trace_context,
            n.schedule_name,
            n.fire_time,
            n.next_fire_time,
            n.keep_completed,
            n.keep_failed,
        )
        if values != shared:  # equal values have equal texts (a time as UTC, numbers checked)
            shared = values
            head, middle, tail = _shared_copy_text(n, now)
        params = dumps(n.params)
        if "\\" in params:  # JSON escapes every control character: only `\` is left to double
            params = params.replace("\\", "\\\\")
        correlation = _copy_text(n.correlation_id)
        yield f"{run_id}\t{head}\t{params}\t{middle}\t{correlation}\t{tail}\n"


def _shared_copy_text(n: NewRun, now: datetime) -> tuple[str, str, str]:
    """The columns before params, between params and correlation_id, and after it."""
    text = _copy_text
    head = (n.job_name, n.queue, "QUEUED", n.priority, now if n.run_at is None else n.run_at)
    middle = (
        n.retry.attempts,
        _retry_json(n.retry),
        _float(n.timeout),
        str(n.trigger),
        str(n.scope),
        n.algorithm_version,
    )
    tail = (
        n.tenant_id,
        n.user_id,
        n.concurrency_key,
        dumps(n.trace_context) if n.trace_context else None,
        now,
        n.schedule_name,
        n.fire_time,
        n.next_fire_time,
        n.keep_completed,
        n.keep_failed,
    )
    return "\t".join(map(text, head)), "\t".join(map(text, middle)), "\t".join(map(text, tail))


#: COPY's text format writes these as backslash escapes (and NULL as `\N`).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """One value in COPY's text format: a time as aware UTC ISO-8601, a number as Python
    writes it (PostgreSQL reads both), text escaped."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return (value if isinstance(value, str) else str(value)).translate(_COPY_ESCAPES)


# -- write_feedback -------------------------------------------------------------------------


def feedback_params(batches: Sequence[Feedback]) -> dict[str, Any]:
    """The recordset of fenced updates (merged per run and attempt) and the log-row arrays.

    Two flushes of one attempt in the same call become one update: the later progress wins,
    `log_seq` is the highest, the summary the last one given (as applying them in turn would).
    A naive log time is taken as local time.
    """
    merged: dict[tuple[int, int], dict[str, Any]] = {}
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "run_id",
            "fence",
            "seq",
            "attempt",
            "level",
            "stage",
            "message",
            "context",
            "created_at",
        )
    }
    for fb in batches:
        key = (fb.run_id, fb.attempt)
        prev = merged.get(key)
        first_seq, last_seq = (fb.logs[0].seq, fb.logs[-1].seq) if fb.logs else (0, 0)
        summary = fb.summary if fb.summary is not None else (prev or {}).get("summary")
        if prev is not None:
            first_seq = prev["first_seq"] or first_seq
            last_seq = max(last_seq, prev["last_seq"])
        merged[key] = {
            "run_id": fb.run_id,
            "attempt": fb.attempt,
            "stage": fb.stage,
            "progress_current": fb.progress_current,
            "progress_total": fb.progress_total,
            "entity_type": fb.entity_type,
            "progress_message": fb.progress_message,
            "outcome": fb.outcome,
            "has_warnings": fb.has_warnings,
            "summary": summary,
            "first_seq": first_seq,  # the log rows of this call: the event's range
            "last_seq": last_seq,
        }
        for line in fb.logs:
            cols["run_id"].append(fb.run_id)
            cols["fence"].append(fb.attempt)
            cols["seq"].append(line.seq)
            cols["attempt"].append(line.attempt)
            cols["level"].append(line.level)
            cols["stage"].append(text(line.stage))
            cols["message"].append(text(line.message))
            cols["context"].append(dumps_or_none(line.context))
            cols["created_at"].append(line.at)
    return {"batches": list(merged.values()), **cols}


# -- finish_runs ----------------------------------------------------------------------------


def finish_records(finishes: Sequence[Finish]) -> list[dict[str, Any]]:
    """One record per distinct (run, attempt); a repeat in the same call is refused, as the
    first one already ended the attempt."""
    seen: set[tuple[int, int]] = set()
    out = []
    for i, f in enumerate(finishes):
        key = (f.run_id, f.attempt)
        if key in seen:
            continue
        seen.add(key)
        out.append(
            {
                "i": i,
                "run_id": f.run_id,
                "attempt": f.attempt,
                "status": str(RunStatus(f.status)),
                "result": f.result,
                "error": f.error,
                "duration_ms": f.duration_ms,
                "retry_at": iso(f.retry_at),
            }
        )
    return out


# -- NOTIFY payloads ------------------------------------------------------------------------


def entry(run_id: int, kind: str, first: int = 0, last: int = 0) -> str:
    """One event of a `jobglass_events` payload: run id, kind, first and last log seq."""
    return f'{{"r":{int(run_id)},"k":{_kind_json(kind)},"f":{int(first)},"t":{int(last)}}}'


@lru_cache(maxsize=16)
def _kind_json(kind: str) -> str:
    return json.dumps(kind)  # a handful of kinds: encoded once each, not once per run


def status_entries(run_ids: Iterable[int]) -> Iterator[str]:
    """`entry(run_id, "status")` of each run, for a big batch."""
    return (entry(run_id, "status") for run_id in run_ids)


def payloads(entries: Iterable[str]) -> list[str]:
    """JSON arrays of entries, each below PostgreSQL's 8000-byte NOTIFY limit."""
    out: list[str] = []
    chunk: list[str] = []
    size = 2
    for item in entries:
        if chunk and size + len(item) + 1 > PAYLOAD_LIMIT:
            out.append("[" + ",".join(chunk) + "]")
            chunk, size = [], 2
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        out.append("[" + ",".join(chunk) + "]")
    return out


def chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])
