-- Runs, their logs and live workers. Changes reach other processes by NOTIFY.
CREATE TABLE runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name TEXT NOT NULL,
    queue TEXT NOT NULL DEFAULT 'default',
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    run_at TIMESTAMPTZ NOT NULL,
    job_id TEXT,
    params JSONB NOT NULL DEFAULT '{}',
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    retry JSONB,
    timeout DOUBLE PRECISION,
    trigger TEXT NOT NULL DEFAULT 'API',
    scope TEXT NOT NULL DEFAULT 'system',
    algorithm_version TEXT,
    correlation_id TEXT,
    tenant_id TEXT,
    user_id TEXT,
    concurrency_key TEXT,
    trace_context JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    duration_ms BIGINT,
    lease_expires_at TIMESTAMPTZ,
    worker_id TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    stage TEXT,
    progress_current BIGINT NOT NULL DEFAULT 0,
    progress_total BIGINT,
    entity_type TEXT,
    progress_message TEXT,
    outcome JSONB NOT NULL DEFAULT '{}',
    summary TEXT,
    has_warnings BOOLEAN NOT NULL DEFAULT FALSE,
    log_seq BIGINT NOT NULL DEFAULT 0,
    result JSONB,
    error JSONB,
    errors JSONB NOT NULL DEFAULT '[]',
    schedule_name TEXT,
    fire_time TIMESTAMPTZ,
    next_fire_time TIMESTAMPTZ,
    keep_completed INTEGER,
    keep_failed INTEGER
) WITH (fillfactor = 70);
-- Progress updates touch no indexed column, so they stay HOT.
CREATE INDEX runs_claim ON runs (queue, priority DESC, run_at, id)
    WHERE status IN ('QUEUED', 'RETRYING');
CREATE INDEX runs_running_lease ON runs (lease_expires_at) WHERE status = 'RUNNING';
CREATE UNIQUE INDEX runs_job_id_live ON runs (job_id)
    WHERE job_id IS NOT NULL AND status IN ('QUEUED', 'RETRYING', 'RUNNING');
CREATE UNIQUE INDEX runs_concurrency_running ON runs (concurrency_key)
    WHERE concurrency_key IS NOT NULL AND status = 'RUNNING';
CREATE INDEX runs_finished ON runs (job_name, status, finished_at)
    WHERE status IN ('SUCCESS', 'FAILED', 'CANCELLED');
CREATE INDEX runs_status_id ON runs (status, id);
CREATE INDEX runs_job_name_id ON runs (job_name, id);
CREATE INDEX runs_correlation ON runs (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX runs_tenant ON runs (tenant_id, id) WHERE tenant_id IS NOT NULL;

CREATE TABLE run_logs (
    run_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    level TEXT NOT NULL,
    stage TEXT,
    message TEXT NOT NULL,
    context JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues JSONB NOT NULL,
    concurrency INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
