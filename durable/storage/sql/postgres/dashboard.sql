-- PostgreSQL overrides of sql/dashboard.sql: JSON search by jsonb containment.

-- name: dashboard_search_executions
SELECT * FROM executions
WHERE (CAST(:workflow AS TEXT) IS NULL OR workflow_name = :workflow)
  AND (CAST(:statuses AS TEXT) IS NULL
       OR status IN (SELECT jsonb_array_elements_text(CAST(:statuses AS jsonb))))
  AND (CAST(:queue AS TEXT) IS NULL OR queue = :queue)
  AND (CAST(:parent_id AS TEXT) IS NULL OR parent_id = :parent_id)
  AND (CAST(:schedule AS TEXT) IS NULL OR schedule_name = :schedule)
  AND (CAST(:since AS BIGINT) IS NULL OR created_at >= :since)
  AND (CAST(:until AS BIGINT) IS NULL OR created_at < :until)
  AND (CAST(:pattern AS TEXT) IS NULL OR id LIKE :pattern)
  AND (CAST(:input_doc AS TEXT) IS NULL OR CAST(input AS jsonb) @> CAST(:input_doc AS jsonb))
  AND (CAST(:context_doc AS TEXT) IS NULL
       OR CAST(context AS jsonb) @> CAST(:context_doc AS jsonb))
  AND (CAST(:cursor_at AS BIGINT) IS NULL OR created_at < :cursor_at
       OR (created_at = :cursor_at AND id < :cursor_id))
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: dashboard_count_executions
SELECT count(*) AS n FROM (
  SELECT 1 FROM executions
  WHERE (CAST(:workflow AS TEXT) IS NULL OR workflow_name = :workflow)
    AND (CAST(:statuses AS TEXT) IS NULL
         OR status IN (SELECT jsonb_array_elements_text(CAST(:statuses AS jsonb))))
    AND (CAST(:queue AS TEXT) IS NULL OR queue = :queue)
    AND (CAST(:parent_id AS TEXT) IS NULL OR parent_id = :parent_id)
    AND (CAST(:schedule AS TEXT) IS NULL OR schedule_name = :schedule)
    AND (CAST(:since AS BIGINT) IS NULL OR created_at >= :since)
    AND (CAST(:until AS BIGINT) IS NULL OR created_at < :until)
    AND (CAST(:pattern AS TEXT) IS NULL OR id LIKE :pattern)
    AND (CAST(:input_doc AS TEXT) IS NULL OR CAST(input AS jsonb) @> CAST(:input_doc AS jsonb))
    AND (CAST(:context_doc AS TEXT) IS NULL
         OR CAST(context AS jsonb) @> CAST(:context_doc AS jsonb))
  LIMIT :cap
) AS capped

-- name: dashboard_select_ids
SELECT id, status, workflow_name FROM executions
WHERE (CAST(:workflow AS TEXT) IS NULL OR workflow_name = :workflow)
  AND (CAST(:statuses AS TEXT) IS NULL
       OR status IN (SELECT jsonb_array_elements_text(CAST(:statuses AS jsonb))))
  AND (CAST(:queue AS TEXT) IS NULL OR queue = :queue)
  AND (CAST(:parent_id AS TEXT) IS NULL OR parent_id = :parent_id)
  AND (CAST(:schedule AS TEXT) IS NULL OR schedule_name = :schedule)
  AND (CAST(:since AS BIGINT) IS NULL OR created_at >= :since)
  AND (CAST(:until AS BIGINT) IS NULL OR created_at < :until)
  AND (CAST(:pattern AS TEXT) IS NULL OR id LIKE :pattern)
  AND (CAST(:input_doc AS TEXT) IS NULL OR CAST(input AS jsonb) @> CAST(:input_doc AS jsonb))
  AND (CAST(:context_doc AS TEXT) IS NULL
       OR CAST(context AS jsonb) @> CAST(:context_doc AS jsonb))
ORDER BY created_at DESC, id DESC
LIMIT :cap

-- name: dashboard_change_marker
-- the WAL position moves with every write: a change marker without an index on the hot path
SELECT CAST(pg_current_wal_lsn() - CAST('0/0' AS pg_lsn) AS BIGINT) AS updated_at
