-- Schedules (one row each, code- or config-defined) and their fires. The primary key of
-- schedule_fires is what makes each fire time fire exactly once across any number of
-- scheduler processes: a fire is claimed by inserting its row, in the same transaction
-- that inserts its run.
CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    job_name TEXT NOT NULL,
    cron TEXT,
    every_seconds DOUBLE PRECISION,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    description TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    params JSONB NOT NULL DEFAULT '{}',
    tenant_id TEXT,
    user_id TEXT,
    correlation_prefix TEXT,
    misfire TEXT NOT NULL DEFAULT 'fire_once'
        CHECK (misfire IN ('fire_once', 'skip', 'catch_up')),
    overlap TEXT NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'queue')),
    catch_up_limit INTEGER NOT NULL DEFAULT 10,
    next_fire_at TIMESTAMPTZ,
    last_fire_at TIMESTAMPTZ,
    last_run_id BIGINT,
    updated_at TIMESTAMPTZ NOT NULL,
    source TEXT NOT NULL DEFAULT 'code' CHECK (source IN ('code', 'config')),
    CHECK ((cron IS NULL) <> (every_seconds IS NULL))
);
-- The scheduler's tick reads only active schedules, soonest first.
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE enabled AND NOT paused;

CREATE TABLE schedule_fires (
    schedule_name TEXT NOT NULL,
    fire_time TIMESTAMPTZ NOT NULL,
    run_id BIGINT,
    decided TEXT NOT NULL CHECK (decided IN ('enqueued', 'skipped', 'misfire-skipped')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (schedule_name, fire_time)
);
