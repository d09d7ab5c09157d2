-- Retention: finding finished runs old enough to delete, and deleting a run
-- with everything that belongs to it (steps, waits, inbox, child runs).

-- name: retention_count
SELECT count(*) AS n FROM executions r
WHERE r.status = :status AND r.completed_at < :before
  AND (r.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM executions p WHERE p.id = r.parent_id))

-- name: retention_candidates
SELECT r.id, r.completed_at FROM executions r
WHERE r.status = :status AND r.completed_at < :before
  AND (CAST(:after_at AS BIGINT) IS NULL OR r.completed_at > :after_at
       OR (r.completed_at = :after_at AND r.id > :after_id))
  AND (r.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM executions p WHERE p.id = r.parent_id))
ORDER BY r.completed_at, r.id
LIMIT :limit

-- name: retention_tree
WITH RECURSIVE tree(id) AS (
  SELECT CAST(:id AS TEXT)
  UNION
  SELECT e.id FROM executions e JOIN tree t ON e.parent_id = t.id
)
SELECT e.id, e.status FROM executions e JOIN tree t ON e.id = t.id

-- name: retention_count_steps
SELECT count(*) AS n FROM step_executions WHERE execution_id = :id

-- name: retention_delete_steps
DELETE FROM step_executions WHERE execution_id = :id

-- name: retention_delete_waits
DELETE FROM waits WHERE execution_id = :id

-- name: retention_delete_inbox
DELETE FROM inbox WHERE execution_id = :id

-- name: retention_delete_execution
DELETE FROM executions WHERE id = :id
  AND status IN /*> _terminal_statuses */
