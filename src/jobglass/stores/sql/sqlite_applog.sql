-- Named queries of the SQLite store for application and audit logs (AppLogger).
-- Times are REAL unix seconds, JSON is TEXT. Reads are composed from
-- applog_types.applog_filter_sql (a fixed column list, bound values).

-- name: insert_app_log
INSERT INTO app_logs (
    created_at, level, message, user_id, correlation_id, source_key, source_display_name,
    external_system_key, external_system_display_name, record_key, record_display_name,
    ip_address, method, path, user_agent, session_id, referer, request_size, response_size,
    duration_ms, credential_id, credential_type, context
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_audit_log
INSERT INTO audit_logs (
    created_at, action, resource, user_id, correlation_id, source_key, source_display_name,
    external_system_key, external_system_display_name, record_key, record_display_name,
    ip_address, method, path, user_agent, session_id, referer, request_size, response_size,
    duration_ms, credential_id, credential_type, data, context
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: prune_app_logs
DELETE FROM app_logs WHERE id IN (
    SELECT id FROM app_logs INDEXED BY app_logs_created_at
    WHERE created_at < :before ORDER BY created_at LIMIT :batch
);

-- name: prune_audit_logs
DELETE FROM audit_logs WHERE id IN (
    SELECT id FROM audit_logs INDEXED BY audit_logs_created_at
    WHERE created_at < :before ORDER BY created_at LIMIT :batch
);
