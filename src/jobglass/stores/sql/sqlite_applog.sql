-- Named queries of the SQLite store for application and audit logs (AppLogger).
-- Times are REAL unix seconds, JSON is TEXT. Reads are composed from
-- applog_types.applog_filter_sql (a fixed column list, bound values).

-- Rows are inserted by sqlite_nulls.insert_filled: `INSERT INTO app_logs (the row's
-- non-NULL columns)`, as binding NULLs from Python costs more than the rest of the insert.

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
