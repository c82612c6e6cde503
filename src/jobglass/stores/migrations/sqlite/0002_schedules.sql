-- Schedules (one row each, code- or config-defined) and their fires. The primary key of
-- schedule_fires is what makes each fire time fire exactly once across any number of
-- scheduler processes: a fire is claimed by inserting its row, in the same transaction
-- that inserts its run.
CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    job_name TEXT NOT NULL,
    cron TEXT,
    every_seconds REAL,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    description TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    paused INTEGER NOT NULL DEFAULT 0,
    params TEXT NOT NULL DEFAULT '{}',
    tenant_id TEXT,
    user_id TEXT,
    correlation_prefix TEXT,
    misfire TEXT NOT NULL DEFAULT 'fire_once'
        CHECK (misfire IN ('fire_once', 'skip', 'catch_up')),
    overlap TEXT NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'queue')),
    catch_up_limit INTEGER NOT NULL DEFAULT 10,
    next_fire_at REAL,
    last_fire_at REAL,
    last_run_id INTEGER,
    updated_at REAL NOT NULL,
    source TEXT NOT NULL DEFAULT 'code' CHECK (source IN ('code', 'config')),
    CHECK ((cron IS NULL) <> (every_seconds IS NULL))
);
-- The scheduler's tick reads only active schedules, soonest first.
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled = 1 AND paused = 0;

CREATE TABLE schedule_fires (
    schedule_name TEXT NOT NULL,
    fire_time REAL NOT NULL,
    run_id INTEGER,
    decided TEXT NOT NULL CHECK (decided IN ('enqueued', 'skipped', 'misfire-skipped')),
    created_at REAL NOT NULL,
    PRIMARY KEY (schedule_name, fire_time)
) WITHOUT ROWID;
