-- PostgreSQL overrides of sql/dashboard.sql: JSON search by jsonb containment.

-- name: _json_match
-- A context written before NUL was refused may hold the JSON escape \u0000, which
-- jsonb rejects: such a row matches nothing instead of failing the search for all.
-- (An input never does: its jsonb index refused it on insert.)
(CAST(:input_doc AS TEXT) IS NULL OR CAST(input AS jsonb) @> CAST(:input_doc AS jsonb))
  AND (CAST(:context_doc AS TEXT) IS NULL OR CASE
    WHEN strpos(context, '\u0000') > 0 AND context ~ '(^|[^\\])(\\\\)*\\u0000' THEN FALSE
    ELSE CAST(context AS jsonb) @> CAST(:context_doc AS jsonb)
  END)
  AND (CAST(:result_doc AS TEXT) IS NULL OR CASE
    WHEN strpos(result, '\u0000') > 0 AND result ~ '(^|[^\\])(\\\\)*\\u0000' THEN FALSE
    ELSE CAST(result AS jsonb) @> CAST(:result_doc AS jsonb)
  END)

-- name: dashboard_change_marker
-- the WAL position moves with every write: a change marker without an index on the hot path
SELECT CAST(pg_current_wal_lsn() - CAST('0/0' AS pg_lsn) AS BIGINT) AS updated_at
