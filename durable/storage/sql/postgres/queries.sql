-- PostgreSQL overrides of sql/queries.sql.

-- name: _statuses
SELECT jsonb_array_elements_text(CAST(:statuses AS jsonb))

-- name: lock_execution
SELECT id FROM executions WHERE id = :id FOR UPDATE

-- name: claim
WITH ready AS (/*> _ready */ FOR UPDATE SKIP LOCKED)
UPDATE executions SET /*> _claim_set */
FROM ready WHERE executions.id = ready.id
RETURNING executions.*

-- name: save_fast
-- one statement: save_execution + insert_step + cleanup of pending waits + the NOTIFYs of
-- events that travel with this commit + (when the claim ends) the claim of the next run
WITH upd AS (
  UPDATE executions SET /*> _save_set */
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
  SELECT pg_notify(c, t)
  FROM unnest(CAST(:n_channels AS TEXT[]), CAST(:n_texts AS TEXT[])) AS x(c, t)
  WHERE EXISTS (SELECT 1 FROM upd)
), ready AS (
  /*> _ready */ FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE executions SET /*> _claim_set */
  FROM ready WHERE executions.id = ready.id AND EXISTS (SELECT 1 FROM upd)
  RETURNING executions.*
)
SELECT (SELECT count(*) FROM upd) AS n, (SELECT count(*) FROM notified) AS sent,
  (SELECT row_to_json(c) FROM claimed c LIMIT 1) AS next_row

-- name: stale_claims
SELECT e.id, e.workflow_name, e.locked_by, e.lock_token, e.current_step,
  CASE WHEN w.heartbeat_at IS NULL OR w.heartbeat_at < :stale_before THEN 1 ELSE 0 END AS dead
FROM executions e LEFT JOIN workers w ON w.id = e.locked_by
WHERE e.lock_token IS NOT NULL AND e.heartbeat_at < :stale_before
ORDER BY e.heartbeat_at
FOR UPDATE OF e SKIP LOCKED

-- name: heartbeat_claims
-- only the claims a thread of this worker is running (a JSON array of lock tokens)
UPDATE executions SET heartbeat_at = :now
WHERE locked_by = :worker_id
  AND lock_token IN (SELECT jsonb_array_elements_text(CAST(:tokens AS jsonb)))

-- name: claim_suspect
WITH ready AS (/*> _ready_suspect */ FOR UPDATE SKIP LOCKED)
UPDATE executions SET /*> _claim_set */
FROM ready WHERE executions.id = ready.id
RETURNING executions.*
