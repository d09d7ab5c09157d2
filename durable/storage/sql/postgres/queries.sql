-- PostgreSQL overrides of sql/queries.sql.

-- name: list_executions
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
  AND (CAST(:cursor_at AS BIGINT) IS NULL OR created_at < :cursor_at
       OR (created_at = :cursor_at AND id < :cursor_id))
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: claim
WITH ready AS (
  SELECT id FROM executions
  WHERE queue = :queue AND lock_token IS NULL AND wake_at IS NOT NULL AND wake_at <= :now
  ORDER BY priority DESC, wake_at
  LIMIT :limit
  FOR UPDATE SKIP LOCKED
)
UPDATE executions e SET lock_token = :token, locked_by = :worker_id, heartbeat_at = :now,
  status = CASE WHEN e.status IN ('pending', 'waiting') THEN 'running' ELSE e.status END,
  attempt = e.attempt + 1, started_at = COALESCE(e.started_at, :now), updated_at = :now
FROM ready WHERE e.id = ready.id
RETURNING e.*
