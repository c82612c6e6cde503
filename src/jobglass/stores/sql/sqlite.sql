-- Named queries of the SQLite store. Times are REAL unix seconds, JSON is TEXT.

-- name: insert_run
INSERT INTO runs (
    job_name, queue, status, priority, run_at, job_id, params, attempt, max_attempts, retry,
    timeout, trigger, scope, algorithm_version, correlation_id, tenant_id, user_id,
    concurrency_key, trace_context, created_at, started_at, lease_expires_at, worker_id,
    schedule_name, fire_time, next_fire_time, keep_completed, keep_failed
) VALUES (
    :job_name, :queue, :status, :priority, :run_at, :job_id, :params, :attempt, :max_attempts,
    :retry, :timeout, :trigger, :scope, :algorithm_version, :correlation_id, :tenant_id,
    :user_id, :concurrency_key, :trace_context, :created_at, :started_at, :lease_expires_at,
    :worker_id, :schedule_name, :fire_time, :next_fire_time, :keep_completed, :keep_failed
)
ON CONFLICT (job_id) WHERE job_id IS NOT NULL AND status IN ('QUEUED', 'RETRYING', 'RUNNING')
DO NOTHING
RETURNING id;

-- name: live_run_by_job_id
SELECT * FROM runs
WHERE job_id = :job_id AND status IN ('QUEUED', 'RETRYING', 'RUNNING');

-- name: claim_candidates
SELECT id, concurrency_key FROM runs INDEXED BY runs_claim
WHERE status IN ('QUEUED', 'RETRYING') AND queue IN (SELECT value FROM json_each(:queues))
  AND run_at <= :now
  AND (concurrency_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM runs busy
      WHERE busy.concurrency_key = runs.concurrency_key AND busy.status = 'RUNNING'))
ORDER BY priority DESC, run_at, id
LIMIT :limit;

-- name: running_concurrency_keys
SELECT concurrency_key FROM runs
WHERE status = 'RUNNING' AND concurrency_key IN (SELECT value FROM json_each(:keys));

-- name: claim_runs
-- The whole batch in one statement (RETURNING order is unspecified: the caller sorts). The
-- columns are `rows.RUN_FIELDS`, in order: the rows are decoded by position.
UPDATE runs SET
    status = 'RUNNING', attempt = attempt + 1, worker_id = :worker_id,
    lease_expires_at = :lease_until, started_at = :now, cancel_requested = 0
WHERE id IN (SELECT value FROM json_each(:ids)) AND status IN ('QUEUED', 'RETRYING')
RETURNING id, job_name, queue, status, priority, params, attempt, max_attempts, retry, timeout,
    job_id, trigger, scope, algorithm_version, correlation_id, tenant_id, user_id,
    concurrency_key, run_at, created_at, started_at, finished_at, duration_ms, lease_expires_at,
    worker_id, cancel_requested, stage, progress_current, progress_total, entity_type,
    progress_message, outcome, summary, has_warnings, log_seq, result, error, errors,
    trace_context, schedule_name, fire_time, next_fire_time, keep_completed, keep_failed;

-- name: update_feedback
UPDATE runs SET
    stage = :stage, progress_current = :progress_current, progress_total = :progress_total,
    entity_type = :entity_type, progress_message = :progress_message, outcome = :outcome,
    has_warnings = :has_warnings, log_seq = MAX(log_seq, :log_seq),
    summary = COALESCE(:summary, summary)
WHERE id = :run_id AND attempt = :attempt AND status = 'RUNNING'
RETURNING id;

-- name: insert_log
INSERT OR IGNORE INTO run_logs (run_id, seq, attempt, level, stage, message, context, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_event
INSERT INTO events (run_id, kind, log_from, log_to, created_at)
VALUES (:run_id, :kind, :log_from, :log_to, :now);

-- name: create_finish_batch
-- The writer connection's scratch table for finish_runs (TEMP: this connection's alone).
-- Rows go in by executemany: the JSON array it replaced was re-parsed by every json_extract,
-- 18 a run. A worker's finish of 100 runs held the write lock 61-71 us a run before, 46-55
-- after (tenth session, the two alternated three times).
CREATE TEMP TABLE IF NOT EXISTS finish_batch (
    run_id INTEGER NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL, result TEXT,
    error TEXT, finished_at REAL, duration_ms INTEGER, retry_at REAL,
    fed INTEGER NOT NULL DEFAULT 0, stage TEXT, progress_current INTEGER,
    progress_total INTEGER, entity_type TEXT, progress_message TEXT, outcome TEXT,
    has_warnings INTEGER, log_seq INTEGER, summary TEXT
);

-- name: stage_finish
-- An end without feedback: its feedback columns stay as they are.
INSERT INTO temp.finish_batch (
    run_id, attempt, status, result, error, finished_at, duration_ms, retry_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: stage_fed_finish
-- An end with the attempt's last feedback (stage ... summary), set by the same UPDATE.
INSERT INTO temp.finish_batch VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: finish_runs
-- The staged batch of fenced finishes (at most one per (run_id, attempt)) in one statement;
-- returns the attempts that ended. The batch is the outer loop and each run found by its key
-- (`+` keeps the status index out).
UPDATE runs SET
    status = f.status, result = f.result, error = COALESCE(f.error, runs.error),
    errors = CASE WHEN f.error IS NULL THEN runs.errors
        ELSE json_insert(runs.errors, '$[#]', json(f.error)) END,
    finished_at = f.finished_at, duration_ms = f.duration_ms,
    run_at = COALESCE(f.retry_at, runs.run_at), lease_expires_at = NULL,
    worker_id = CASE WHEN f.status = 'RETRYING' THEN NULL ELSE runs.worker_id END,
    cancel_requested = 0,
    stage = CASE WHEN f.fed THEN f.stage ELSE runs.stage END,
    progress_current = CASE WHEN f.fed THEN f.progress_current ELSE runs.progress_current END,
    progress_total = CASE WHEN f.fed THEN f.progress_total ELSE runs.progress_total END,
    entity_type = CASE WHEN f.fed THEN f.entity_type ELSE runs.entity_type END,
    progress_message = CASE WHEN f.fed THEN f.progress_message ELSE runs.progress_message END,
    outcome = CASE WHEN f.fed THEN f.outcome ELSE runs.outcome END,
    has_warnings = CASE WHEN f.fed THEN f.has_warnings ELSE runs.has_warnings END,
    log_seq = CASE WHEN f.fed THEN MAX(runs.log_seq, f.log_seq) ELSE runs.log_seq END,
    summary = CASE WHEN f.fed THEN COALESCE(f.summary, runs.summary) ELSE runs.summary END
FROM temp.finish_batch AS f
WHERE runs.id = f.run_id AND runs.attempt = f.attempt AND +runs.status = 'RUNNING'
RETURNING runs.id, runs.attempt;

-- name: clear_finish_batch
DELETE FROM temp.finish_batch;

-- name: insert_feedback_events
-- :events is a JSON array of [run_id, first log seq, last log seq].
INSERT INTO events (run_id, kind, log_from, log_to, created_at)
SELECT json_extract(value, '$[0]'), 'feedback', json_extract(value, '$[1]'),
    json_extract(value, '$[2]'), :now
FROM json_each(:events);

-- name: insert_status_events
INSERT INTO events (run_id, kind, log_from, log_to, created_at)
SELECT value, 'status', 0, 0, :now FROM json_each(:run_ids);

-- name: expired_runs
SELECT * FROM runs INDEXED BY runs_running_lease
WHERE status = 'RUNNING' AND lease_expires_at < :now;

-- name: get_run
SELECT * FROM runs WHERE id = :id;

-- name: get_logs
SELECT * FROM run_logs
WHERE run_id = :run_id AND seq > :after
  AND level IN (SELECT value FROM json_each(:levels))
ORDER BY seq
LIMIT :limit;

-- name: cancel_queued
UPDATE runs SET status = 'CANCELLED', finished_at = :now, lease_expires_at = NULL,
    error = :error, errors = json_insert(errors, '$[#]', json(:error))
WHERE id = :id AND status IN ('QUEUED', 'RETRYING')
RETURNING *;

-- name: cancel_running
UPDATE runs SET cancel_requested = 1
WHERE id = :id AND status = 'RUNNING'
RETURNING *;

-- name: requeue
UPDATE runs SET status = 'QUEUED', run_at = :now, finished_at = NULL, duration_ms = NULL,
    max_attempts = attempt + MAX(1, max_attempts - attempt), cancel_requested = 0,
    result = NULL, summary = NULL
WHERE id = :id AND status IN ('FAILED', 'CANCELLED')
RETURNING *;

-- name: delete_run_logs
DELETE FROM run_logs WHERE run_id = :id;

-- name: delete_run
DELETE FROM runs WHERE id = :id AND status IN ('SUCCESS', 'FAILED', 'CANCELLED')
RETURNING id;

-- name: upsert_worker
INSERT INTO workers (id, hostname, pid, queues, concurrency, started_at, heartbeat_at)
VALUES (:id, :hostname, :pid, :queues, :concurrency, :now, :now)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at;

-- name: touch_worker
UPDATE workers SET heartbeat_at = :now WHERE id = :id;

-- name: renew_lease
UPDATE runs SET lease_expires_at = :lease_until
WHERE id = :run_id AND attempt = :attempt AND status = 'RUNNING'
RETURNING id, cancel_requested;

-- name: remove_worker
DELETE FROM workers WHERE id = :id;

-- name: list_workers
SELECT w.*, (SELECT COUNT(*) FROM runs r WHERE r.status = 'RUNNING' AND r.worker_id = w.id)
    AS running
FROM workers w WHERE w.heartbeat_at >= :since ORDER BY w.started_at;

-- name: delete_stale_workers
DELETE FROM workers WHERE heartbeat_at < :before;

-- name: queue_counts
SELECT queue,
    SUM(CASE WHEN status = 'QUEUED' AND run_at <= :now THEN 1 ELSE 0 END) AS waiting,
    SUM(CASE WHEN status = 'QUEUED' AND run_at > :now THEN 1 ELSE 0 END) AS delayed,
    SUM(CASE WHEN status = 'RUNNING' THEN 1 ELSE 0 END) AS active,
    SUM(CASE WHEN status = 'RETRYING' THEN 1 ELSE 0 END) AS retrying,
    SUM(CASE WHEN status = 'SUCCESS' THEN 1 ELSE 0 END) AS completed,
    SUM(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) AS failed,
    SUM(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END) AS cancelled,
    MIN(CASE WHEN status IN ('QUEUED', 'RETRYING') AND run_at <= :now THEN run_at END)
        AS oldest_waiting
FROM runs GROUP BY queue ORDER BY queue;

-- name: prune_candidates
-- Finished runs of one job and status past retention, newest kept. A run's own keep_completed
-- / keep_failed (given at enqueue) wins over the job's `:keep` (NULL: keep them all). The
-- literal status list lets SQLite use the partial index (a bound :status alone cannot).
SELECT id FROM (
    SELECT id, CASE WHEN status = 'SUCCESS' THEN keep_completed ELSE keep_failed END AS own_keep,
        row_number() OVER (ORDER BY finished_at DESC, id DESC) AS newest
    FROM runs INDEXED BY runs_finished
    WHERE job_name = :job_name AND status = :status
      AND status IN ('SUCCESS', 'FAILED', 'CANCELLED')
)
WHERE newest > COALESCE(own_keep, :keep);

-- name: prune_older
SELECT id FROM runs INDEXED BY runs_finished
WHERE job_name = :job_name AND status = :status AND finished_at < :before
  AND status IN ('SUCCESS', 'FAILED', 'CANCELLED');

-- name: finished_job_names
SELECT DISTINCT job_name FROM runs WHERE status IN ('SUCCESS', 'FAILED', 'CANCELLED');

-- name: events_after
SELECT * FROM events WHERE id > :cursor ORDER BY id LIMIT :limit;

-- name: last_event_id
SELECT COALESCE(MAX(id), 0) FROM events;

-- name: prune_events
DELETE FROM events WHERE created_at < :before;

-- name: finished_per_minute
-- SUCCESS / FAILED runs finished since :since, by queue and minute of finished_at (the
-- Queues page's throughput chart). runs_finished is (job_name, status, finished_at): the
-- distinct job names are walked on it one seek each (a loose index scan), then each name's
-- recent finishes are one range seek, so the cost follows the runs of the window, not every
-- finished run kept. The literal status list lets SQLite use the partial index.
WITH RECURSIVE names(job_name) AS (
    SELECT MIN(job_name) FROM runs INDEXED BY runs_finished
    WHERE status IN ('SUCCESS', 'FAILED', 'CANCELLED')
    UNION ALL
    SELECT (
        SELECT MIN(r.job_name) FROM runs AS r INDEXED BY runs_finished
        WHERE r.status IN ('SUCCESS', 'FAILED', 'CANCELLED') AND r.job_name > names.job_name
    )
    FROM names WHERE names.job_name IS NOT NULL
)
SELECT r.queue, CAST(r.finished_at / 60 AS INTEGER) * 60 AS minute,
    SUM(r.status = 'SUCCESS') AS completed, SUM(r.status = 'FAILED') AS failed
FROM names JOIN runs AS r INDEXED BY runs_finished ON r.job_name = names.job_name
WHERE r.status IN ('SUCCESS', 'FAILED') AND r.status IN ('SUCCESS', 'FAILED', 'CANCELLED')
  AND r.finished_at >= :since
GROUP BY r.queue, minute
ORDER BY r.queue, minute;
