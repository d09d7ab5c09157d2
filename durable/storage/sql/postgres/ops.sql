-- PostgreSQL overrides of sql/ops.sql.

-- name: ops_db_now
SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS now_ms
