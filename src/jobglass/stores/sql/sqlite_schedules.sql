-- Named queries of the SQLite store for schedules (stores/sqlite_schedules.py).
-- Times are REAL unix seconds, JSON is TEXT. The same names exist in postgres_schedules.sql.

-- name: upsert_schedule
-- A definition replaces the stored one but keeps its state (paused, last fire and run); its
-- next fire time is kept too unless the timing changed or it was disabled until now.
INSERT INTO schedules (
    name, job_name, cron, every_seconds, timezone, description, enabled, params, tenant_id,
    user_id, correlation_prefix, misfire, overlap, catch_up_limit, next_fire_at, updated_at,
    source
) VALUES (
    :name, :job_name, :cron, :every_seconds, :timezone, :description, :enabled, :params,
    :tenant_id, :user_id, :correlation_prefix, :misfire, :overlap, :catch_up_limit,
    :next_fire_at, :now, :source
)
ON CONFLICT (name) DO UPDATE SET
    next_fire_at = CASE
        WHEN schedules.enabled = 1 AND excluded.enabled = 1
         AND schedules.next_fire_at IS NOT NULL
         AND schedules.cron IS excluded.cron
         AND schedules.every_seconds IS excluded.every_seconds
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
UPDATE schedules SET enabled = 0, updated_at = :now
WHERE enabled = 1 AND name NOT IN (SELECT value FROM json_each(:names));

-- name: due_schedules
SELECT s.*, r.status AS last_run_status
FROM schedules AS s INDEXED BY schedules_due
LEFT JOIN runs AS r ON r.id = s.last_run_id
WHERE s.enabled = 1 AND s.paused = 0 AND s.next_fire_at <= :now
ORDER BY s.next_fire_at, s.name
LIMIT :limit;

-- name: next_schedule_fire
SELECT MIN(next_fire_at) AS next_fire_at FROM schedules WHERE enabled = 1 AND paused = 0;

-- name: schedule_states
SELECT name, next_fire_at, enabled, paused FROM schedules
WHERE name IN (SELECT value FROM json_each(:names));

-- name: insert_schedule_fire
-- The claim: a fire time another scheduler already decided inserts nothing.
INSERT INTO schedule_fires (schedule_name, fire_time, decided, created_at)
VALUES (:name, :fire_time, :decided, :now)
ON CONFLICT (schedule_name, fire_time) DO NOTHING
RETURNING fire_time;

-- name: set_fire_run
UPDATE schedule_fires SET run_id = :run_id
WHERE schedule_name = :name AND fire_time = :fire_time;

-- name: record_schedule_run
UPDATE schedules SET
    last_run_id = MAX(COALESCE(last_run_id, 0), :run_id),
    last_fire_at = CASE WHEN :fire_time IS NULL THEN last_fire_at
        ELSE MAX(COALESCE(last_fire_at, :fire_time), :fire_time) END
WHERE name = :name;

-- name: advance_schedule
UPDATE schedules SET next_fire_at = :next_fire_at WHERE name = :name;

-- name: list_schedules
SELECT s.*, r.status AS last_run_status
FROM schedules AS s LEFT JOIN runs AS r ON r.id = s.last_run_id
ORDER BY s.name;

-- name: get_schedule
SELECT s.*, r.status AS last_run_status
FROM schedules AS s LEFT JOIN runs AS r ON r.id = s.last_run_id
WHERE s.name = :name;

-- name: set_schedule_paused
UPDATE schedules SET paused = :paused, next_fire_at = COALESCE(:next_fire_at, next_fire_at),
    updated_at = :now
WHERE name = :name
RETURNING name;

-- name: list_schedule_fires
SELECT * FROM schedule_fires WHERE schedule_name = :name
ORDER BY fire_time DESC
LIMIT :limit;

-- name: live_runs_by_concurrency_key
-- Overlap: one live run per concurrency key that has any, a RUNNING one first, else the
-- oldest (keys only exist on runs of jobs that do not allow concurrent runs).
SELECT concurrency_key, id, status, trigger, schedule_name FROM (
    SELECT concurrency_key, id, status, trigger, schedule_name,
        row_number() OVER (
            PARTITION BY concurrency_key ORDER BY status = 'RUNNING' DESC, id
        ) AS pick
    FROM runs
    WHERE concurrency_key IN (SELECT value FROM json_each(:keys))
      AND status IN ('QUEUED', 'RETRYING', 'RUNNING')
)
WHERE pick = 1;
