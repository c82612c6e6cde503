-- Named queries of the PostgreSQL store for application and audit logs (AppLogger).
-- A batch is one binary COPY per table, in one transaction. Reads are composed from
-- applog_types.applog_filter_sql (a fixed column list, bound values).

-- name: copy_app_logs
COPY app_logs (
    created_at, level, message, user_id, correlation_id, source_key, source_display_name,
    external_system_key, external_system_display_name, record_key, record_display_name,
    ip_address, method, path, user_agent, session_id, referer, request_size, response_size,
    duration_ms, credential_id, credential_type, context
) FROM STDIN (FORMAT BINARY);

-- name: copy_audit_logs
COPY audit_logs (
    created_at, action, resource, user_id, correlation_id, source_key, source_display_name,
    external_system_key, external_system_display_name, record_key, record_display_name,
    ip_address, method, path, user_agent, session_id, referer, request_size, response_size,
    duration_ms, credential_id, credential_type, data, context
) FROM STDIN (FORMAT BINARY);

-- name: prune_app_logs
DELETE FROM app_logs WHERE id IN (
    SELECT id FROM app_logs WHERE created_at < %(before)s ORDER BY created_at LIMIT %(batch)s
);

-- name: prune_audit_logs
DELETE FROM audit_logs WHERE id IN (
    SELECT id FROM audit_logs WHERE created_at < %(before)s ORDER BY created_at LIMIT %(batch)s
);
