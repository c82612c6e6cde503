-- Named queries of the PostgreSQL store. Times are TIMESTAMPTZ, JSON is JSONB, `now()` is the
-- database clock. Parameters are psycopg `%(name)s` placeholders: a literal percent sign must be
-- written `%%`. Batches travel as one JSONB recordset or as typed arrays, never one row a query.
-- Events go out by `pg_notify` on `jobglass_events` (payload: a JSON array of
-- {"r": run id, "k": kind, "f": first log seq, "t": last log seq}); new work by `pg_notify` on
-- `jobglass_wakeup` (payload: the queue name).

-- name: insert_runs
-- One round trip for a whole batch sent as typed (binary) arrays: the input order is kept (ids
-- grow with `ord`), a live duplicate job_id is skipped (the first of a batch wins; a batch
-- without job_ids is sent without the ON CONFLICT clause, whose speculative insertion cost
-- 2-4 us a row), and each queue that got new queued work is woken once, in the same
-- statement, so the wake-up is delivered only on commit. Only what the database decides comes
-- back. `postgres_create.insert_variants` derives from this text the variant without the
-- ON CONFLICT clause and, for one run, those whose row source is one SELECT of scalars
-- instead of the unnest: keep the unnest's arrays and its r(...) names in the same order.
WITH ins AS (
    INSERT INTO runs (
        job_name, queue, status, priority, run_at, job_id, params, attempt, max_attempts, retry,
        timeout, trigger, scope, algorithm_version, correlation_id, tenant_id, user_id,
        concurrency_key, trace_context, created_at, started_at, lease_expires_at, worker_id,
        schedule_name, fire_time, next_fire_time, keep_completed, keep_failed
    )
    SELECT
        r.job_name, r.queue, CASE WHEN r.running THEN 'RUNNING' ELSE 'QUEUED' END, r.priority,
        COALESCE(r.run_at, now()), r.job_id, r.params::jsonb,
        CASE WHEN r.running THEN 1 ELSE 0 END, r.max_attempts, r.retry::jsonb, r.timeout,
        r.trigger, r.scope, r.algorithm_version, r.correlation_id, r.tenant_id, r.user_id,
        r.concurrency_key, r.trace_context::jsonb, now(), CASE WHEN r.running THEN now() END,
        CASE WHEN r.running THEN now() + make_interval(secs => r.lease_seconds) END,
        CASE WHEN r.running THEN r.worker_id END, r.schedule_name, r.fire_time,
        r.next_fire_time, r.keep_completed, r.keep_failed
    FROM unnest(
        %(job_name)b::text[], %(queue)b::text[], %(running)b::boolean[], %(priority)b::integer[],
        %(run_at)b::timestamptz[], %(job_id)b::text[], %(params)b::text[],
        %(max_attempts)b::integer[], %(retry)b::text[], %(timeout)b::float8[],
        %(trigger)b::text[], %(scope)b::text[], %(algorithm_version)b::text[],
        %(correlation_id)b::text[], %(tenant_id)b::text[], %(user_id)b::text[],
        %(concurrency_key)b::text[], %(trace_context)b::text[], %(lease_seconds)b::float8[],
        %(worker_id)b::text[], %(schedule_name)b::text[], %(fire_time)b::timestamptz[],
        %(next_fire_time)b::timestamptz[], %(keep_completed)b::integer[],
        %(keep_failed)b::integer[]
    ) WITH ORDINALITY AS r(
        job_name, queue, running, priority, run_at, job_id, params, max_attempts, retry,
        timeout, trigger, scope, algorithm_version, correlation_id, tenant_id, user_id,
        concurrency_key, trace_context, lease_seconds, worker_id, schedule_name, fire_time,
        next_fire_time, keep_completed, keep_failed, ord
    )
    ORDER BY r.ord
    ON CONFLICT (job_id) WHERE job_id IS NOT NULL AND status IN ('QUEUED', 'RETRYING', 'RUNNING')
    DO NOTHING
    RETURNING id, job_name, job_id, queue, status, run_at, created_at, started_at,
        lease_expires_at
), woken AS (
    SELECT pg_notify('jobglass_wakeup', q.queue)
    FROM (SELECT DISTINCT queue FROM ins WHERE status = 'QUEUED') AS q
), announced AS (
    -- new runs appear on every API server's stream; 80 runs a payload stays under 8000 bytes
    -- (the JSON spelled out: json_build_object per row cost 3 us of a 30 us row)
    SELECT pg_notify('jobglass_events', c.payload)
    FROM (
        SELECT '[' || string_agg('{"r":' || id || ',"k":"status","f":0,"t":0}', ',') || ']'
            AS payload
        FROM ins GROUP BY id / 80
    ) AS c
)
SELECT ins.* FROM ins
CROSS JOIN (SELECT count(*) FROM woken) AS w
CROSS JOIN (SELECT count(*) FROM announced) AS a
ORDER BY ins.id;

-- name: copy_runs
-- A big batch of queued runs without job_ids (`PostgresStore._copy_runs`; its rows:
-- `pg_batch.copy_run_row`, in this column order). Text format: psycopg's C row formatter
-- escapes each value, the server parses it as its column's type.
COPY runs (
    id, job_name, queue, status, priority, run_at, params, max_attempts, retry, timeout,
    trigger, scope, algorithm_version, correlation_id, tenant_id, user_id, concurrency_key,
    trace_context, created_at, schedule_name, fire_time, next_fire_time, keep_completed,
    keep_failed
) FROM STDIN;

-- name: reserve_run_ids
-- The ids and the creation time of a batch that goes by COPY (`PostgresStore._copy_runs`):
-- ids from the identity's own sequence (ascending: the client sorts them to keep the input
-- order), `now()` the transaction's time, as `insert_runs` would have stored. The sequence
-- is looked up once (`OFFSET 0` keeps the subquery from being folded into every row): per
-- row, the lookup took five times as long as `nextval` itself (37 vs 6 ms for 10,000).
SELECT now() AS now, array_agg(nextval(s.seq)) AS ids
FROM (SELECT pg_get_serial_sequence('runs', 'id')::regclass AS seq OFFSET 0) AS s,
    generate_series(1, %(count)s);

-- name: announce_runs
-- What `insert_runs` sends for its new queued runs, for a batch that went by COPY: each
-- queue woken once, the runs announced on the events channel (delivered only on commit).
SELECT
    (SELECT count(pg_notify('jobglass_wakeup', q)) FROM unnest(%(queues)b::text[]) AS q)
        AS woken,
    (SELECT count(pg_notify('jobglass_events', p)) FROM unnest(%(payloads)b::text[]) AS p)
        AS announced;

-- name: live_runs_by_job_ids
SELECT * FROM runs
WHERE job_id = ANY(%(job_ids)b::text[]) AND status IN ('QUEUED', 'RETRYING', 'RUNNING');

-- name: claim_runs
-- Per queue, the due live runs in claim order straight from the partial index `runs_claim`,
-- skipping rows other claimers hold and keys that already run; then one run per
-- concurrency key, the best `limit`, all claimed by one UPDATE, which returns `rows.RUN_FIELDS`
-- in order (the rows are decoded by position).
-- A claim commits without waiting for its WAL flush (set_config, this transaction only): a
-- claim lost to a server crash only puts its runs back in the queue, which at-least-once
-- delivery allows, and it saves a disk flush on every claim (the start latency's largest part).
WITH cand AS (
    SELECT c.id, c.priority, c.run_at, c.concurrency_key
    FROM unnest(%(queues)b::text[]) AS q(name)
    CROSS JOIN LATERAL (
        SELECT r.id, r.priority, r.run_at, r.concurrency_key
        FROM runs AS r
        WHERE r.status IN ('QUEUED', 'RETRYING') AND r.queue = q.name AND r.run_at <= now()
          AND (r.concurrency_key IS NULL OR NOT EXISTS (
              SELECT 1 FROM runs AS busy
              WHERE busy.concurrency_key = r.concurrency_key AND busy.status = 'RUNNING'))
        ORDER BY r.priority DESC, r.run_at, r.id
        LIMIT %(limit)s
        FOR UPDATE OF r SKIP LOCKED
    ) AS c
), ranked AS (
    SELECT id, priority, run_at, concurrency_key,
        row_number() OVER (PARTITION BY concurrency_key ORDER BY priority DESC, run_at, id)
            AS key_rank
    FROM cand
), picked AS (
    SELECT id FROM ranked
    WHERE concurrency_key IS NULL OR key_rank = 1
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
)
UPDATE runs SET
    status = 'RUNNING', attempt = runs.attempt + 1, worker_id = %(worker_id)s,
    lease_expires_at = now() + make_interval(secs => %(lease_seconds)s), started_at = now(),
    cancel_requested = FALSE
FROM picked
WHERE runs.id = picked.id AND runs.status IN ('QUEUED', 'RETRYING')
  AND set_config('synchronous_commit', 'off', true) = 'off'
RETURNING runs.id, runs.job_name, runs.queue, runs.status, runs.priority, runs.params,
    runs.attempt, runs.max_attempts, runs.retry, runs.timeout, runs.job_id, runs.trigger,
    runs.scope, runs.algorithm_version, runs.correlation_id, runs.tenant_id, runs.user_id,
    runs.concurrency_key, runs.run_at, runs.created_at, runs.started_at, runs.finished_at,
    runs.duration_ms, runs.lease_expires_at, runs.worker_id, runs.cancel_requested, runs.stage,
    runs.progress_current, runs.progress_total, runs.entity_type, runs.progress_message,
    runs.outcome, runs.summary, runs.has_warnings, runs.log_seq, runs.result, runs.error,
    runs.errors, runs.trace_context, runs.schedule_name, runs.fire_time, runs.next_fire_time,
    runs.keep_completed, runs.keep_failed;

-- name: write_feedback
-- One statement, so one transaction: the fenced progress update of every batch, the log rows
-- of the accepted ones, and their events (a NOTIFY per 80 runs: payloads stay below 8000
-- bytes). Batches are merged per (run, attempt) by the caller, so each run matches once.
-- Rows are locked in id order first (`locked`), as finish_runs and renew_leases do: a worker's
-- flusher, finisher and heartbeat touch the same runs at once and must not deadlock. They are
-- found by primary key (`= ANY(ARRAY(...))`): with `IN (SELECT ...)` the planner scanned every
-- RUNNING run and joined, a cost that grew with the runs other workers hold (5,000 running
-- elsewhere: 96 instead of 64 us of server CPU a finished run).
WITH b AS (
    SELECT * FROM jsonb_to_recordset(%(batches)s) AS x(
        run_id BIGINT, attempt INTEGER, stage TEXT, progress_current BIGINT,
        progress_total BIGINT, entity_type TEXT, progress_message TEXT, outcome JSONB,
        has_warnings BOOLEAN, summary TEXT, first_seq BIGINT, last_seq BIGINT
    )
), locked AS (
    SELECT id FROM runs
    WHERE id = ANY(ARRAY(SELECT run_id FROM b)) AND status = 'RUNNING'
    ORDER BY id
    FOR UPDATE
), upd AS (
    UPDATE runs SET
        stage = b.stage, progress_current = b.progress_current,
        progress_total = b.progress_total, entity_type = b.entity_type,
        progress_message = b.progress_message, outcome = b.outcome,
        has_warnings = b.has_warnings, log_seq = GREATEST(runs.log_seq, b.last_seq),
        summary = COALESCE(b.summary, runs.summary)
    FROM b JOIN locked ON locked.id = b.run_id
    WHERE runs.id = b.run_id AND runs.attempt = b.attempt AND runs.status = 'RUNNING'
    RETURNING runs.id, runs.attempt
), logs AS (
    INSERT INTO run_logs (run_id, seq, attempt, level, stage, message, context, created_at)
    SELECT l.run_id, l.seq, l.attempt, l.level, l.stage, l.message, l.context::jsonb,
        to_timestamp(l.created_at)
    FROM unnest(
        %(run_id)b::bigint[], %(fence)b::integer[], %(seq)b::bigint[], %(attempt)b::integer[],
        %(level)b::text[], %(stage)b::text[], %(message)b::text[], %(context)b::text[],
        %(created_at)b::float8[]
    ) AS l(run_id, fence, seq, attempt, level, stage, message, context, created_at)
    JOIN upd ON upd.id = l.run_id AND upd.attempt = l.fence
    ORDER BY l.run_id, l.seq
    ON CONFLICT (run_id, seq) DO NOTHING
), notes AS (
    SELECT pg_notify('jobglass_events', '[' || string_agg(e, ',' ORDER BY n) || ']')
    FROM (
        SELECT row_number() OVER (ORDER BY upd.id) AS n,
            '{"r":' || upd.id || ',"k":"feedback","f":' || b.first_seq || ',"t":' || b.last_seq
                || '}' AS e
        FROM upd JOIN b ON b.run_id = upd.id AND b.attempt = upd.attempt
    ) AS entries
    GROUP BY (n - 1) / 80
)
SELECT upd.id, upd.attempt FROM upd CROSS JOIN (SELECT count(*) FROM notes) AS sent;

-- name: finish_runs
-- One statement for the batch, fenced by attempt, rows locked in id order first (see
-- write_feedback), with the attempts' last feedback (maybe none) folded into the same UPDATE:
-- one new row version per run, not one for the feedback and one for the end. Each feedback
-- record belongs to one of the finishes (the caller checks); its log rows go in only for the
-- ends that pass the fence. Events: a run's "feedback" one before its "status" one.
WITH f AS (
    SELECT * FROM jsonb_to_recordset(%(finishes)s) AS x(
        i INTEGER, run_id BIGINT, attempt INTEGER, status TEXT, result JSONB, error JSONB,
        duration_ms BIGINT, retry_at TIMESTAMPTZ
    )
), b AS (
    SELECT * FROM jsonb_to_recordset(%(batches)s) AS x(
        run_id BIGINT, attempt INTEGER, stage TEXT, progress_current BIGINT,
        progress_total BIGINT, entity_type TEXT, progress_message TEXT, outcome JSONB,
        has_warnings BOOLEAN, summary TEXT, first_seq BIGINT, last_seq BIGINT
    )
), locked AS (
    SELECT id FROM runs
    WHERE id = ANY(ARRAY(SELECT run_id FROM f)) AND status = 'RUNNING'
    ORDER BY id
    FOR UPDATE
), done AS (
    UPDATE runs SET
        status = f.status, result = f.result, error = COALESCE(f.error, runs.error),
        errors = CASE WHEN f.error IS NULL THEN runs.errors
            ELSE runs.errors || jsonb_build_array(f.error) END,
        finished_at = CASE WHEN f.status = 'RETRYING' THEN NULL ELSE now() END,
        duration_ms = f.duration_ms, run_at = COALESCE(f.retry_at, runs.run_at),
        lease_expires_at = NULL,
        worker_id = CASE WHEN f.status = 'RETRYING' THEN NULL ELSE runs.worker_id END,
        cancel_requested = FALSE,
        stage = CASE WHEN b.run_id IS NULL THEN runs.stage ELSE b.stage END,
        progress_current = COALESCE(b.progress_current, runs.progress_current),
        progress_total = CASE WHEN b.run_id IS NULL THEN runs.progress_total
            ELSE b.progress_total END,
        entity_type = CASE WHEN b.run_id IS NULL THEN runs.entity_type ELSE b.entity_type END,
        progress_message = CASE WHEN b.run_id IS NULL THEN runs.progress_message
            ELSE b.progress_message END,
        outcome = COALESCE(b.outcome, runs.outcome),
        has_warnings = COALESCE(b.has_warnings, runs.has_warnings),
        log_seq = GREATEST(runs.log_seq, COALESCE(b.last_seq, 0)),
        summary = COALESCE(b.summary, runs.summary)
    FROM f JOIN locked ON locked.id = f.run_id
    LEFT JOIN b ON b.run_id = f.run_id AND b.attempt = f.attempt
    WHERE runs.id = f.run_id AND runs.attempt = f.attempt AND runs.status = 'RUNNING'
    RETURNING f.i, runs.id, runs.attempt, b.run_id IS NOT NULL AS fed, b.first_seq, b.last_seq
), logs AS (
    INSERT INTO run_logs (run_id, seq, attempt, level, stage, message, context, created_at)
    SELECT l.run_id, l.seq, l.attempt, l.level, l.stage, l.message, l.context::jsonb,
        to_timestamp(l.created_at)
    FROM unnest(
        %(run_id)b::bigint[], %(fence)b::integer[], %(seq)b::bigint[], %(attempt)b::integer[],
        %(level)b::text[], %(stage)b::text[], %(message)b::text[], %(context)b::text[],
        %(created_at)b::float8[]
    ) AS l(run_id, fence, seq, attempt, level, stage, message, context, created_at)
    JOIN done ON done.id = l.run_id AND done.attempt = l.fence
    ORDER BY l.run_id, l.seq
    ON CONFLICT (run_id, seq) DO NOTHING
), notes AS (
    -- payloads sent in order (a sorted subquery feeds pg_notify row by row): a run's
    -- "status" event may fall into the payload after its "feedback" one, never before it
    SELECT pg_notify('jobglass_events', chunks.payload)
    FROM (
        SELECT '[' || string_agg(e, ',' ORDER BY n) || ']' AS payload, (n - 1) / 80 AS part
        FROM (
            SELECT row_number() OVER (ORDER BY i, k) AS n, e
            FROM (
                SELECT i, 0 AS k,
                    '{"r":' || id || ',"k":"feedback","f":' || first_seq || ',"t":'
                        || last_seq || '}' AS e
                FROM done WHERE fed
                UNION ALL
                SELECT i, 1 AS k, '{"r":' || id || ',"k":"status","f":0,"t":0}' AS e FROM done
            ) AS kinds
        ) AS entries
        GROUP BY (n - 1) / 80
        ORDER BY part
    ) AS chunks
)
SELECT done.i, done.id FROM done CROSS JOIN (SELECT count(*) FROM notes) AS sent;

-- name: notify_events
SELECT pg_notify('jobglass_events', p) FROM unnest(%(payloads)b::text[]) AS p;

-- name: notify_wakeup
SELECT pg_notify('jobglass_wakeup', %(queue)s);

-- name: expired_runs
SELECT * FROM runs
WHERE status = 'RUNNING' AND lease_expires_at < now();

-- name: get_run
SELECT * FROM runs WHERE id = %(id)s;

-- name: get_logs
-- created_at as epoch seconds: LogLine keeps a number
SELECT run_id, seq, attempt, level, stage, message, context,
    extract(epoch FROM created_at)::float8 AS created_at
FROM run_logs
WHERE run_id = %(run_id)s AND seq > %(after)s AND level = ANY(%(levels)b::text[])
ORDER BY seq
LIMIT %(limit)s;

-- name: cancel_queued
UPDATE runs SET status = 'CANCELLED', finished_at = now(), lease_expires_at = NULL,
    error = %(error)s, errors = errors || jsonb_build_array(%(error)s::jsonb)
WHERE id = %(id)s AND status IN ('QUEUED', 'RETRYING')
RETURNING *;

-- name: cancel_running
UPDATE runs SET cancel_requested = TRUE
WHERE id = %(id)s AND status = 'RUNNING'
RETURNING *;

-- name: requeue
UPDATE runs SET status = 'QUEUED', run_at = now(), finished_at = NULL, duration_ms = NULL,
    max_attempts = attempt + GREATEST(1, max_attempts - attempt), cancel_requested = FALSE,
    result = NULL, summary = NULL
WHERE id = %(id)s AND status IN ('FAILED', 'CANCELLED')
RETURNING *;

-- name: delete_run_logs
DELETE FROM run_logs WHERE run_id = %(id)s;

-- name: delete_run
DELETE FROM runs WHERE id = %(id)s AND status IN ('SUCCESS', 'FAILED', 'CANCELLED')
RETURNING id;

-- name: delete_runs
-- A prune batch: finished runs only (a run that came back to life meanwhile is kept), and
-- their logs. Rows another pruner holds are left to it.
WITH gone AS (
    DELETE FROM runs
    WHERE id IN (
        SELECT id FROM runs
        WHERE id = ANY(%(ids)b::bigint[]) AND status IN ('SUCCESS', 'FAILED', 'CANCELLED')
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
), gone_logs AS (
    DELETE FROM run_logs WHERE run_id IN (SELECT id FROM gone)
)
SELECT count(*) AS deleted FROM gone;

-- name: upsert_worker
INSERT INTO workers (id, hostname, pid, queues, concurrency, started_at, heartbeat_at)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(queues)s, %(concurrency)s, now(), now())
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at;

-- name: touch_worker
UPDATE workers SET heartbeat_at = now() WHERE id = %(id)s;

-- name: renew_leases
-- Rows locked in id order first (see write_feedback).
WITH locked AS (
    SELECT id FROM runs
    WHERE id = ANY(%(run_ids)b::bigint[]) AND status = 'RUNNING'
    ORDER BY id
    FOR UPDATE
)
UPDATE runs SET lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
FROM unnest(%(run_ids)b::bigint[], %(attempts)b::integer[]) AS h(run_id, attempt)
JOIN locked ON locked.id = h.run_id
WHERE runs.id = h.run_id AND runs.attempt = h.attempt AND runs.status = 'RUNNING'
RETURNING runs.id, runs.cancel_requested;

-- name: remove_worker
DELETE FROM workers WHERE id = %(id)s;

-- name: list_workers
SELECT w.*, (SELECT count(*) FROM runs AS r WHERE r.status = 'RUNNING' AND r.worker_id = w.id)
    AS running
FROM workers AS w
WHERE w.heartbeat_at >= now() - make_interval(secs => %(stale_after)s)
ORDER BY w.started_at;

-- name: delete_stale_workers
DELETE FROM workers WHERE heartbeat_at < now() - interval '1 day';

-- name: queue_counts
SELECT queue,
    count(*) FILTER (WHERE status = 'QUEUED' AND run_at <= now()) AS waiting,
    count(*) FILTER (WHERE status = 'QUEUED' AND run_at > now()) AS delayed,
    count(*) FILTER (WHERE status = 'RUNNING') AS active,
    count(*) FILTER (WHERE status = 'RETRYING') AS retrying,
    count(*) FILTER (WHERE status = 'SUCCESS') AS completed,
    count(*) FILTER (WHERE status = 'FAILED') AS failed,
    count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
    EXTRACT(EPOCH FROM now() - min(run_at) FILTER (
        WHERE status IN ('QUEUED', 'RETRYING') AND run_at <= now()))::float8 AS oldest_age
FROM runs GROUP BY queue ORDER BY queue;

-- name: prune_candidates
-- Finished runs of one job and status past retention, newest kept. A run's own keep_completed
-- / keep_failed (given at enqueue) wins over the job's `keep` (NULL: keep them all).
SELECT id FROM (
    SELECT id, CASE WHEN status = 'SUCCESS' THEN keep_completed ELSE keep_failed END AS own_keep,
        row_number() OVER (ORDER BY finished_at DESC, id DESC) AS newest
    FROM runs
    WHERE job_name = %(job_name)s AND status = %(status)s
      AND status IN ('SUCCESS', 'FAILED', 'CANCELLED')
) AS ranked
WHERE newest > COALESCE(own_keep, %(keep)s::integer);

-- name: prune_older
SELECT id FROM runs
WHERE job_name = %(job_name)s AND status = %(status)s
  AND finished_at < now() - make_interval(secs => %(max_age_seconds)s);

-- name: finished_job_names
SELECT DISTINCT job_name FROM runs WHERE status IN ('SUCCESS', 'FAILED', 'CANCELLED');

-- name: finished_per_minute
-- SUCCESS / FAILED runs finished since %(since)s, by queue and minute of finished_at (the
-- Queues page's throughput chart; minute as epoch seconds). runs_finished is (job_name,
-- status, finished_at): the distinct job names are walked one seek each (a loose index scan),
-- then each name's recent finishes are one range seek on all three columns. OFFSET 0 keeps
-- the lateral subquery a per-name seek (flattened, the planner scans the whole index).
WITH RECURSIVE names AS (
    (
        SELECT job_name FROM runs WHERE status IN ('SUCCESS', 'FAILED', 'CANCELLED')
        ORDER BY job_name LIMIT 1
    )
    UNION ALL
    SELECT (
        SELECT r.job_name FROM runs AS r
        WHERE r.status IN ('SUCCESS', 'FAILED', 'CANCELLED') AND r.job_name > names.job_name
        ORDER BY r.job_name LIMIT 1
    )
    FROM names WHERE names.job_name IS NOT NULL
)
SELECT f.queue, (floor(extract(epoch FROM f.finished_at) / 60) * 60)::float8 AS minute,
    count(*) FILTER (WHERE f.status = 'SUCCESS') AS completed,
    count(*) FILTER (WHERE f.status = 'FAILED') AS failed
FROM names CROSS JOIN LATERAL (
    SELECT r.queue, r.status, r.finished_at FROM runs AS r
    WHERE r.job_name = names.job_name AND r.status IN ('SUCCESS', 'FAILED')
      AND r.finished_at >= %(since)s
    OFFSET 0
) AS f
GROUP BY f.queue, minute
ORDER BY f.queue, minute;
