"""Named SQL: every query a store uses exists, and both backends name the same queries.

A backend-only name must be listed below with the reason; the same logic keeps the same name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobglass.stores import pg_batch, queries
from jobglass.stores.base import NewRun
from jobglass.stores.rows import epoch_to_dt

STORES = Path(queries.__file__).parent

#: Where the two backends differ in shape, not just in dialect.
SQLITE_ONLY = {
    # one writer: runs are inserted and updated one statement per run; claimed and finished a
    # batch a statement, as on PostgreSQL
    "insert_run": "PostgreSQL: insert_runs (one statement per batch)",
    "live_run_by_job_id": "PostgreSQL: live_runs_by_job_ids",
    "claim_candidates": "PostgreSQL: claim_runs (one CTE with SKIP LOCKED)",
    "running_concurrency_keys": "PostgreSQL: inside claim_runs",
    "update_feedback": "PostgreSQL: write_feedback (update, logs and NOTIFY in one statement)",
    "insert_log": "PostgreSQL: inside write_feedback",
    "insert_status_events": "PostgreSQL: NOTIFY inside finish_runs",
    "insert_feedback_events": "PostgreSQL: NOTIFY inside finish_runs",
    # finish_runs reads its batch from the writer's TEMP table (PostgreSQL: unnest of arrays)
    "create_finish_batch": "PostgreSQL: finish_runs reads its batch by jsonb_to_recordset",
    "stage_finish": "PostgreSQL: finish_runs reads its batch by jsonb_to_recordset",
    "stage_fed_finish": "PostgreSQL: finish_runs reads its batch by jsonb_to_recordset",
    "clear_finish_batch": "PostgreSQL: finish_runs reads its batch by jsonb_to_recordset",
    "renew_lease": "PostgreSQL: renew_leases (UPDATE ... FROM unnest)",
    # the change outbox other processes poll; PostgreSQL pushes by NOTIFY instead
    "insert_event": "PostgreSQL: NOTIFY (notify_events, or inside the writing statement)",
    "events_after": "no outbox on PostgreSQL",
    "last_event_id": "no outbox on PostgreSQL",
    "prune_events": "no outbox on PostgreSQL",
}
POSTGRES_ONLY = {
    "insert_runs": "batch form of insert_run",
    "live_runs_by_job_ids": "batch form of live_run_by_job_id",
    "write_feedback": "update_feedback + insert_log + events in one statement",
    "renew_leases": "batch form of renew_lease",
    "delete_runs": "prune deletes in batches (SQLite: delete_run per run)",
    "notify_events": "NOTIFY jobglass_events (SQLite: insert_event)",
    "notify_wakeup": "NOTIFY jobglass_wakeup (SQLite workers poll)",
    "copy_app_logs": "COPY of app lines (SQLite: sqlite_nulls.insert_filled)",
    "copy_audit_logs": "COPY of audit events (SQLite: sqlite_nulls.insert_filled)",
    "copy_runs": "COPY of a big batch of new runs (SQLite: insert_run per run)",
    "reserve_run_ids": "ids for copy_runs (SQLite: insert_run returns its id)",
    "announce_runs": "NOTIFY for copy_runs (SQLite: insert_event, workers poll)",
}

# q["name"], self.q["name"], and the PostgreSQL store's helpers _one("name"), _fetch(c, "name"),
# _exec(c, "name")
_USES = (
    re.compile(r"""\bq\[\s*["'](\w+)["']\s*\]"""),
    re.compile(r"""\b_one\(\s*["'](\w+)["']"""),
    re.compile(r"""\b_(?:fetch|exec)\(\s*\w+\s*,\s*["'](\w+)["']"""),
)


def used_names(backend: str) -> dict[str, set[str]]:
    """Query names used in each module of a backend (`sqlite*.py`; `postgres*.py`, `pg_*.py`)."""
    patterns = ["sqlite*.py"] if backend == "sqlite" else ["postgres*.py", "pg_*.py"]
    found: dict[str, set[str]] = {}
    for pattern in patterns:
        for path in sorted(STORES.glob(pattern)):
            text = path.read_text(encoding="utf-8")
            found[path.name] = {m.group(1) for rx in _USES for m in rx.finditer(text)}
    return found


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_used_query_exists(backend: str) -> None:
    defined = set(queries.load(backend))
    modules = used_names(backend)
    assert modules, f"no {backend} store module found"
    assert any(modules.values()), "the usage patterns found nothing: update _USES"
    missing = {name: sorted(used - defined) for name, used in modules.items() if used - defined}
    assert not missing, f"queries used but not defined in sql/{backend}*.sql: {missing}"


def test_the_main_modules_are_scanned() -> None:
    assert {"get_run", "claim_candidates", "insert_event"} <= used_names("sqlite")["sqlite.py"]
    pg = used_names("postgres")["postgres.py"]
    assert {"get_run", "claim_runs", "insert_runs", "write_feedback", "finish_runs"} <= pg


def test_copy_runs_columns_are_the_line_builders() -> None:
    """`pg_batch.copy_run_lines` writes its values in `COPY_COLUMNS` order: the statement's;
    a value that changes mid-batch is written from that run on, and text is escaped."""
    sql = queries.load("postgres")["copy_runs"]
    listed = re.search(r"COPY runs \(([^)]*)\)", sql)
    assert listed is not None
    assert tuple(c.strip() for c in listed.group(1).split(",")) == pg_batch.COPY_COLUMNS
    now = datetime.now(UTC)
    runs = [NewRun(job_name="j"), NewRun(job_name="j", tenant_id="a\tb\\"), NewRun(job_name="j")]
    lines = list(pg_batch.copy_run_lines([7, 8, 9], runs, now))
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    rows = [dict(zip(pg_batch.COPY_COLUMNS, line[:-1].split("\t"), strict=True)) for line in lines]
    assert [r["id"] for r in rows] == ["7", "8", "9"]
    assert [r["tenant_id"] for r in rows] == ["\\N", "a\\tb\\\\", "\\N"]
    assert rows[0]["status"] == "QUEUED" and rows[0]["created_at"] == now.isoformat()
    assert rows[0]["run_at"] == rows[0]["created_at"] and rows[0]["params"] == "{}"


def test_sqlite_insert_run_columns_are_the_value_builders() -> None:
    """SQLite's `insert_run` names `NEW_RUN_COLUMNS` in order: its batch inserts build the
    same statement from that tuple, and `_run_values` fills it positionally."""
    from jobglass.stores import sqlite
    from jobglass.stores.base import NEW_RUN_COLUMNS

    sql = queries.load("sqlite")["insert_run"]
    listed = re.search(r"INSERT INTO runs \(([^)]*)\)", sql)
    assert listed is not None
    assert tuple(c.strip() for c in listed.group(1).split(",")) == NEW_RUN_COLUMNS
    values = sqlite._run_values(NewRun(job_name="j", start_running=True, worker_id="w"), 5.0)
    row = dict(zip(NEW_RUN_COLUMNS, values, strict=True))
    assert (row["status"], row["attempt"], row["started_at"], row["worker_id"]) == (
        "RUNNING",
        1,
        5.0,
        "w",
    )


def test_both_backends_define_the_same_names() -> None:
    sqlite, postgres = set(queries.load("sqlite")), set(queries.load("postgres"))
    assert sorted(sqlite - postgres - set(SQLITE_ONLY)) == [], "document or add to PostgreSQL"
    assert sorted(postgres - sqlite - set(POSTGRES_ONLY)) == [], "document or add to SQLite"
    # a name documented as backend-only must really be only there (and still exist)
    assert sorted(set(SQLITE_ONLY) - (sqlite - postgres)) == []
    assert sorted(set(POSTGRES_ONLY) - (postgres - sqlite)) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_queries_are_parameterized_by_name(backend: str) -> None:
    """SQLite binds `:name` (or `?` for executemany), PostgreSQL `%(name)s` / `%(name)b`."""
    for name, sql in queries.load(backend).items():
        assert sql.strip(), name
        if backend == "postgres":
            assert "?" not in re.sub(r"'[^']*'", "", sql), f"{name}: '?' placeholder on PostgreSQL"
            assert not re.search(r"(?<![%\w]):[a-z_]+\b", re.sub(r"::\w+", "", sql)), name
            stray = re.sub(r"%\(\w+\)[sb]|%%", "", sql)
            assert "%" not in stray, f"{name}: a bare % (write %% for a literal percent)"
        else:
            assert "%(" not in sql, f"{name}: psycopg placeholder on SQLite"


def test_migrations_are_numbered_alike() -> None:
    sqlite = [(v, n) for v, n, _ in queries.migrations("sqlite")]
    postgres = [(v, n) for v, n, _ in queries.migrations("postgres")]
    assert sqlite == postgres


def test_one_run_insert_takes_scalars() -> None:
    """PostgreSQL's one-run `insert_runs` variants select each value once as a scalar of the
    array's type (no unnest), with and without the job_id dedupe; a changed statement whose
    row source cannot be rewritten is refused by name when the store is made."""
    from jobglass.stores.postgres_create import insert_variants, one_row_source

    insert = queries.load("postgres")["insert_runs"]
    arrays = re.findall(r"(%\(\w+\)b)::(\w+)\[\]", insert)
    assert len(arrays) == 25
    variants = insert_variants(insert)
    for (with_job_ids, one), sql in variants.items():
        assert ("ON CONFLICT (job_id)" in sql) == with_job_ids
        assert ("FROM unnest(" in sql) == (not one)
        if one:
            for param, kind in arrays:
                name = param[2:-2]
                assert sql.count(param) == 1 and f"{param}::{kind} AS {name}" in sql
            assert "[]" not in sql and "ORDER BY r.ord" not in sql
    with pytest.raises(ValueError, match="unnest"):
        one_row_source(insert.replace("WITH ORDINALITY", ""))
    with pytest.raises(ValueError, match="do not pair"):
        one_row_source(insert.replace("keep_completed, keep_failed, ord", "keep_failed, ord"))
    with pytest.raises(ValueError, match="typed array parameter"):
        one_row_source(insert.replace("%(queue)b::text[]", "%(queue)s::text"))


def test_stored_statuses_decode_to_the_enum() -> None:
    from jobglass.models import RunStatus
    from jobglass.stores.rows import status_of

    for status in RunStatus:
        assert status_of(str(status)) is status
    with pytest.raises(ValueError, match="BOGUS"):
        status_of("BOGUS")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_claims_return_the_run_fields_in_order(backend: str) -> None:
    """A claim's rows are decoded by position (`rows.run_from_values`): its RETURNING list is
    `RUN_FIELDS`, in order, on both backends."""
    from jobglass.stores.rows import RUN_FIELDS

    sql = queries.load(backend)["claim_runs"]
    returning = sql.rsplit("RETURNING", 1)[1].strip().rstrip(";")
    names = [c.strip().removeprefix("runs.") for c in returning.split(",")]
    assert tuple(names) == RUN_FIELDS


def test_run_decoded_by_position_has_each_value_in_its_field() -> None:
    """Every stored field of `Run` set to a value of its own, read by position and by name:
    each decoded value is in its own field (a misordered field would swap two values)."""
    import json

    from jobglass.models import RetryPolicy, Run, RunStatus
    from jobglass.stores.rows import RUN_FIELDS, run_from_row, run_from_values

    json_fields = {"params", "outcome", "result", "error", "errors", "trace_context"}
    times = {"run_at", "created_at", "started_at", "finished_at", "lease_expires_at"}
    times |= {"fire_time", "next_fire_time"}
    numbers = {"id", "priority", "attempt", "max_attempts", "timeout", "duration_ms"}
    numbers |= {"progress_current", "progress_total", "log_seq", "keep_completed", "keep_failed"}
    stored: dict[str, object] = {}
    expected: dict[str, object] = {}
    for i, name in enumerate(RUN_FIELDS):
        if name in json_fields:
            value: object = [{"field": name}] if name == "errors" else {"field": name}
            stored[name], expected[name] = json.dumps(value), value
        elif name in times:
            stored[name] = 1_700_000_000.0 + i
            expected[name] = epoch_to_dt(stored[name])
        elif name in numbers:
            stored[name] = expected[name] = 10 + i
        else:
            stored[name] = expected[name] = f"v-{name}"
    stored["status"], expected["status"] = "RETRYING", RunStatus.RETRYING
    stored["retry"] = '{"attempts": 4, "backoff": "fixed", "delay": 2.0}'
    expected["retry"] = RetryPolicy(attempts=4, backoff="fixed", delay=2.0)
    for flag in ("cancel_requested", "has_warnings"):
        stored[flag], expected[flag] = 1, True
    want = Run(**expected)  # type: ignore[arg-type]
    assert run_from_values([stored[name] for name in RUN_FIELDS], epoch_to_dt) == want
    assert run_from_row(stored, epoch_to_dt) == want
