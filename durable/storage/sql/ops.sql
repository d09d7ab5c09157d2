-- Operations reads and repairs for `durable doctor` and `durable inspect`.

-- name: ops_execution_waits
SELECT * FROM waits WHERE execution_id = :id ORDER BY created_at, seq, name

-- name: ops_stale_claims
SELECT id, workflow_name, locked_by, heartbeat_at FROM executions
WHERE lock_token IS NOT NULL AND heartbeat_at < :before
ORDER BY heartbeat_at LIMIT :limit

-- name: ops_unwakeable
SELECT e.id, e.workflow_name, e.current_step, e.updated_at FROM executions e
WHERE e.status = 'waiting' AND e.lock_token IS NULL AND e.wake_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM waits w WHERE w.execution_id = e.id AND w.status = 'pending')
ORDER BY e.updated_at LIMIT :limit

-- name: ops_finished_child_waits
SELECT w.id AS wait_id, w.execution_id, c.id AS child_id, c.status AS child_status,
  c.result AS child_result, c.error AS child_error
FROM waits w JOIN executions c ON c.id = w.child_id
WHERE w.kind = 'child' AND w.status = 'pending'
  AND c.status IN /*> _terminal_statuses */
ORDER BY w.created_at LIMIT :limit

-- name: ops_wake_unwakeable
UPDATE executions SET wake_at = :now, updated_at = :now
WHERE id = :id AND status = 'waiting' AND lock_token IS NULL AND wake_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM waits w WHERE w.execution_id = :id AND w.status = 'pending')

-- name: ops_schedule_runs
SELECT schedule_name, status, created_at FROM executions
WHERE schedule_name IS NOT NULL AND created_at >= :since
  AND status IN /*> _terminal_statuses */
ORDER BY schedule_name, created_at DESC

-- name: ops_db_now
SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) AS now_ms
