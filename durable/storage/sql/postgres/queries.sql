-- PostgreSQL overrides of sql/queries.sql.

-- name: _statuses
SELECT jsonb_array_elements_text(CAST(:statuses AS jsonb))

-- name: lock_execution
SELECT id FROM executions WHERE id = :id FOR UPDATE

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

-- name: save_fast
-- save_execution + insert_step + (optional) cleanup of pending waits in one statement
WITH upd AS (
  UPDATE executions SET status = :status, context = :context, current_step = :current_step,
    attempts = :attempts, result = :result, error = :error, queue = :queue,
    wake_at = CASE WHEN :suspend = 1 AND wakeups <> :seen_wakeups THEN :now ELSE CAST(:wake_at AS BIGINT) END,
    lock_token = :new_token, locked_by = :locked_by, deadline_at = :deadline_at,
    completed_at = :completed_at, updated_at = :now
  WHERE id = :id AND lock_token = :token
  RETURNING id
), step AS (
  INSERT INTO step_executions (id, execution_id, step_name, step_type, status, attempt, result,
    error, logs, started_at, completed_at, duration_ms, next_retry_at)
  SELECT CAST(:s_id AS TEXT), upd.id, CAST(:s_step_name AS TEXT), CAST(:s_step_type AS TEXT),
    CAST(:s_status AS TEXT), CAST(:s_attempt AS BIGINT), CAST(:s_result AS TEXT),
    CAST(:s_error AS TEXT), CAST(:s_logs AS TEXT), CAST(:s_started_at AS BIGINT),
    CAST(:s_completed_at AS BIGINT), CAST(:s_duration_ms AS BIGINT), CAST(:s_next_retry_at AS BIGINT)
  FROM upd WHERE CAST(:s_id AS TEXT) IS NOT NULL
), cleanup AS (
  UPDATE waits SET status = 'cancelled', resolved_at = :now
  WHERE execution_id IN (SELECT id FROM upd) AND status = 'pending' AND :cleanup = 1
), notified AS (
  -- events that travel with this commit (a cross-process bus on this database)
  SELECT pg_notify(c, t)
  FROM unnest(CAST(:n_channels AS TEXT[]), CAST(:n_texts AS TEXT[])) AS x(c, t)
  WHERE EXISTS (SELECT 1 FROM upd)
)
SELECT (SELECT count(*) FROM upd) AS n, (SELECT count(*) FROM notified) AS sent
