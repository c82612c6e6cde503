-- Named queries of the PostgreSQL store for schedules (stores/postgres_schedules.py).
-- Times are TIMESTAMPTZ, JSON is JSONB. Batches travel as one JSONB recordset or as typed
-- arrays. The same names exist in sqlite_schedules.sql.

-- name: upsert_schedule
-- A definition replaces the stored one but keeps its state (paused, last fire and run); its
-- next fire time is kept too unless the timing changed or it was disabled until now.
INSERT INTO schedules (
    name, job_name, cron, every_seconds, timezone, description, enabled, params, tenant_id,
    user_id, correlation_prefix, misfire, overlap, catch_up_limit, next_fire_at, updated_at,
    source
)
SELECT
    s.name, s.job_name, s.cron, s.every_seconds, s.timezone, s.description, s.enabled,
    COALESCE(s.params, '{}'), s.tenant_id, s.user_id, s.correlation_prefix, s.misfire,
    s.overlap, s.catch_up_limit, s.next_fire_at, %(now)s, s.source
FROM jsonb_to_recordset(%(schedules)s) AS s(
    name TEXT, job_name TEXT, cron TEXT, every_seconds DOUBLE PRECISION, timezone TEXT,
    description TEXT, enabled BOOLEAN, params JSONB, tenant_id TEXT, user_id TEXT,
    correlation_prefix TEXT, misfire TEXT, overlap TEXT, catch_up_limit INTEGER,
    next_fire_at TIMESTAMPTZ, source TEXT
)
ORDER BY s.name
ON CONFLICT (name) DO UPDATE SET
    next_fire_at = CASE
        WHEN schedules.enabled AND excluded.enabled
         AND schedules.next_fire_at IS NOT NULL
         AND schedules.cron IS NOT DISTINCT FROM excluded.cron
         AND schedules.every_seconds IS NOT DISTINCT FROM excluded.every_seconds
         AND schedules.timezone = excluded.timezone
        THEN schedules.next_fire_at ELSE excluded.next_fire_at END,
    job_name = excluded.job_name, cron = excluded.cron, every_seconds = excluded.every_seconds,
    timezone = excluded.timezone, description = excluded.description,
    enabled = excluded.enabled, params = excluded.params, tenant_id = excluded.tenant_id,
    user_id = excluded.user_id, correlation_prefix = excluded.correlation_prefix,
    misfire = excluded.misfire, overlap = excluded.overlap,
    catch_up_limit = excluded.catch_up_limit, updated_at = excluded.updated_at,
    source = excluded.source;

-- name: disable_other_schedules
UPDATE schedules SET enabled = FALSE, updated_at = %(now)s
WHERE enabled AND NOT (name = ANY(%(names)s::text[]));

-- name: due_schedules
SELECT s.*, r.status AS last_run_status
FROM schedules AS s
LEFT JOIN runs AS r ON r.id = s.last_run_id
WHERE s.enabled AND NOT s.paused AND s.next_fire_at <= %(now)s
ORDER BY s.next_fire_at, s.name
LIMIT %(limit)s;

-- name: next_schedule_fire
SELECT min(next_fire_at) AS next_fire_at FROM schedules WHERE enabled AND NOT paused;

-- name: schedule_states
-- Locks the tick's schedules in name order (two schedulers never deadlock on them) and
-- shows whether another scheduler decided their window meanwhile.
SELECT name, next_fire_at, enabled, paused FROM schedules
WHERE name = ANY(%(names)s::text[])
ORDER BY name
FOR UPDATE;

-- name: insert_schedule_fire
-- The claim: a fire time another scheduler already decided inserts nothing.
INSERT INTO schedule_fires (schedule_name, fire_time, decided, created_at)
SELECT f.name, f.fire_time, f.decided, now()
FROM unnest(%(names)s::text[], %(fire_times)s::timestamptz[], %(decided)s::text[])
    AS f(name, fire_time, decided)
ORDER BY f.name, f.fire_time
ON CONFLICT (schedule_name, fire_time) DO NOTHING
RETURNING schedule_name, fire_time;

-- name: set_fire_run
UPDATE schedule_fires AS f SET run_id = v.run_id
FROM unnest(%(names)s::text[], %(fire_times)s::timestamptz[], %(run_ids)s::bigint[])
    AS v(name, fire_time, run_id)
WHERE f.schedule_name = v.name AND f.fire_time = v.fire_time;

-- name: record_schedule_run
UPDATE schedules AS s SET
    last_run_id = GREATEST(s.last_run_id, v.run_id),
    last_fire_at = GREATEST(s.last_fire_at, v.fire_time)
FROM (
    SELECT u.name, max(u.run_id) AS run_id, max(u.fire_time) AS fire_time
    FROM unnest(%(names)s::text[], %(run_ids)s::bigint[], %(fire_times)s::timestamptz[])
        AS u(name, run_id, fire_time)
    GROUP BY u.name
) AS v
WHERE s.name = v.name;

-- name: advance_schedule
UPDATE schedules AS s SET next_fire_at = v.next_fire_at
FROM unnest(%(names)s::text[], %(next_fire_ats)s::timestamptz[]) AS v(name, next_fire_at)
WHERE s.name = v.name;

-- name: list_schedules
SELECT s.*, r.status AS last_run_status
FROM schedules AS s LEFT JOIN runs AS r ON r.id = s.last_run_id
ORDER BY s.name;

-- name: get_schedule
SELECT s.*, r.status AS last_run_status
FROM schedules AS s LEFT JOIN runs AS r ON r.id = s.last_run_id
WHERE s.name = %(name)s;

-- name: set_schedule_paused
UPDATE schedules SET paused = %(paused)s,
    next_fire_at = COALESCE(%(next_fire_at)s, next_fire_at), updated_at = %(now)s
WHERE name = %(name)s
RETURNING name;

-- name: list_schedule_fires
SELECT * FROM schedule_fires WHERE schedule_name = %(name)s
ORDER BY fire_time DESC
LIMIT %(limit)s;

-- name: live_runs_by_concurrency_key
-- Overlap: one live run per concurrency key that has any, a RUNNING one first, else the
-- oldest (keys only exist on runs of jobs that do not allow concurrent runs).
SELECT DISTINCT ON (concurrency_key) concurrency_key, id, status, trigger, schedule_name
FROM runs
WHERE concurrency_key = ANY(%(keys)s::text[])
  AND status IN ('QUEUED', 'RETRYING', 'RUNNING')
ORDER BY concurrency_key, (status = 'RUNNING') DESC, id;
