-- PostgreSQL overrides of sql/dashboard.sql: JSON search by jsonb containment.

-- name: _json_match
(CAST(:input_doc AS TEXT) IS NULL OR CAST(input AS jsonb) @> CAST(:input_doc AS jsonb))
  AND (CAST(:context_doc AS TEXT) IS NULL OR CAST(context AS jsonb) @> CAST(:context_doc AS jsonb))
  AND (CAST(:result_doc AS TEXT) IS NULL OR CAST(result AS jsonb) @> CAST(:result_doc AS jsonb))

-- name: dashboard_change_marker
-- the WAL position moves with every write: a change marker without an index on the hot path
SELECT CAST(pg_current_wal_lsn() - CAST('0/0' AS pg_lsn) AS BIGINT) AS updated_at
