-- Application logs and audit events (jobglass.applog.AppLogger).
-- Two tables, not one with a kind column: they differ in volume (app lines are the hot
-- path, audit events rare), retention (settings app_log_days / audit_log_days: a range
-- delete on each table's created_at index), and indexes (audit needs action/resource,
-- app lines need level), so neither pays for the other's indexes on insert.
-- Newest first is ORDER BY created_at DESC, id DESC, and every filterable field has its
-- own index (field, created_at, id), so a filtered page (and the next one, after the cursor
-- row's (created_at, id)) is a short backward range scan of one index. The optional
-- fields' indexes are partial (IS NOT NULL): rows without them cost those indexes nothing.
-- PostgreSQL: created_at is TIMESTAMPTZ, JSON is JSONB. The filtered text columns are
-- COLLATE "C": they are only compared for equality, and byte comparison makes every index
-- insert cheaper than a locale's collation would.
CREATE TABLE app_logs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    level TEXT COLLATE "C" NOT NULL,
    message TEXT NOT NULL,
    user_id TEXT COLLATE "C",
    correlation_id TEXT COLLATE "C",
    source_key TEXT COLLATE "C",
    source_display_name TEXT COLLATE "C",
    external_system_key TEXT COLLATE "C",
    external_system_display_name TEXT COLLATE "C",
    record_key TEXT COLLATE "C",
    record_display_name TEXT COLLATE "C",
    ip_address TEXT,
    method TEXT,
    path TEXT,
    user_agent TEXT,
    session_id TEXT,
    referer TEXT,
    request_size BIGINT,
    response_size BIGINT,
    duration_ms BIGINT,
    credential_id TEXT,
    credential_type TEXT,
    context JSONB
);
CREATE INDEX app_logs_created_at ON app_logs (created_at, id);
CREATE INDEX app_logs_level ON app_logs (level, created_at, id);
CREATE INDEX app_logs_user_id ON app_logs (user_id, created_at, id) WHERE user_id IS NOT NULL;
CREATE INDEX app_logs_correlation_id ON app_logs (correlation_id, created_at, id) WHERE correlation_id IS NOT NULL;
CREATE INDEX app_logs_source_key ON app_logs (source_key, created_at, id) WHERE source_key IS NOT NULL;
CREATE INDEX app_logs_source_display_name ON app_logs (source_display_name, created_at, id) WHERE source_display_name IS NOT NULL;
CREATE INDEX app_logs_external_system_key ON app_logs (external_system_key, created_at, id) WHERE external_system_key IS NOT NULL;
CREATE INDEX app_logs_external_system_display_name ON app_logs (external_system_display_name, created_at, id) WHERE external_system_display_name IS NOT NULL;
CREATE INDEX app_logs_record_key ON app_logs (record_key, created_at, id) WHERE record_key IS NOT NULL;
CREATE INDEX app_logs_record_display_name ON app_logs (record_display_name, created_at, id) WHERE record_display_name IS NOT NULL;

CREATE TABLE audit_logs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    action TEXT COLLATE "C" NOT NULL,
    resource TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    correlation_id TEXT COLLATE "C",
    source_key TEXT COLLATE "C",
    source_display_name TEXT COLLATE "C",
    external_system_key TEXT COLLATE "C",
    external_system_display_name TEXT COLLATE "C",
    record_key TEXT COLLATE "C",
    record_display_name TEXT COLLATE "C",
    ip_address TEXT,
    method TEXT,
    path TEXT,
    user_agent TEXT,
    session_id TEXT,
    referer TEXT,
    request_size BIGINT,
    response_size BIGINT,
    duration_ms BIGINT,
    credential_id TEXT,
    credential_type TEXT,
    data JSONB,
    context JSONB
);
CREATE INDEX audit_logs_created_at ON audit_logs (created_at, id);
CREATE INDEX audit_logs_action ON audit_logs (action, created_at, id);
CREATE INDEX audit_logs_resource ON audit_logs (resource, created_at, id);
CREATE INDEX audit_logs_user_id ON audit_logs (user_id, created_at, id) WHERE user_id IS NOT NULL;
CREATE INDEX audit_logs_correlation_id ON audit_logs (correlation_id, created_at, id) WHERE correlation_id IS NOT NULL;
CREATE INDEX audit_logs_source_key ON audit_logs (source_key, created_at, id) WHERE source_key IS NOT NULL;
CREATE INDEX audit_logs_source_display_name ON audit_logs (source_display_name, created_at, id) WHERE source_display_name IS NOT NULL;
CREATE INDEX audit_logs_external_system_key ON audit_logs (external_system_key, created_at, id) WHERE external_system_key IS NOT NULL;
CREATE INDEX audit_logs_external_system_display_name ON audit_logs (external_system_display_name, created_at, id) WHERE external_system_display_name IS NOT NULL;
CREATE INDEX audit_logs_record_key ON audit_logs (record_key, created_at, id) WHERE record_key IS NOT NULL;
CREATE INDEX audit_logs_record_display_name ON audit_logs (record_display_name, created_at, id) WHERE record_display_name IS NOT NULL;
