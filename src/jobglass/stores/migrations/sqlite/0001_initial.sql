-- Runs, their logs, the change outbox other processes follow, and live workers.
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_name TEXT NOT NULL,
    queue TEXT NOT NULL DEFAULT 'default',
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    run_at REAL NOT NULL,
    job_id TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    retry TEXT,
    timeout REAL,
    trigger TEXT NOT NULL DEFAULT 'API',
    scope TEXT NOT NULL DEFAULT 'system',
    algorithm_version TEXT,
    correlation_id TEXT,
    tenant_id TEXT,
    user_id TEXT,
    concurrency_key TEXT,
    trace_context TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    duration_ms INTEGER,
    lease_expires_at REAL,
    worker_id TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    stage TEXT,
    progress_current INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER,
    entity_type TEXT,
    progress_message TEXT,
    outcome TEXT NOT NULL DEFAULT '{}',
    summary TEXT,
    has_warnings INTEGER NOT NULL DEFAULT 0,
    log_seq INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    errors TEXT NOT NULL DEFAULT '[]',
    schedule_name TEXT,
    fire_time REAL,
    next_fire_time REAL,
    keep_completed INTEGER,
    keep_failed INTEGER
);
-- The claim path reads only live runs, in claim order.
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
    run_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    level TEXT NOT NULL,
    stage TEXT,
    message TEXT NOT NULL,
    context TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    log_from INTEGER NOT NULL DEFAULT 0,
    log_to INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
