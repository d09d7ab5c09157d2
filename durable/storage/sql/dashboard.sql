-- Dashboard reads and the audit log (see durable/storage/dashboard.py).
-- JSON search: SQLite compares json_extract(column, path) typed; PostgreSQL
-- overrides with jsonb containment (indexed on input, see migration 0005).

-- name: _json_match
(CAST(:input_path AS TEXT) IS NULL OR json_extract(input, :input_path) IS :input_value)
  AND (CAST(:context_path AS TEXT) IS NULL OR json_extract(context, :context_path) IS :context_value)
  AND (CAST(:result_path AS TEXT) IS NULL OR json_extract(result, :result_path) IS :result_value)

-- name: dashboard_search_executions
SELECT * FROM executions
WHERE /*> _execution_filter */ AND /*> _json_match */ AND /*> _after_cursor */
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: dashboard_count_executions
SELECT count(*) AS n FROM (
  SELECT 1 FROM executions WHERE /*> _execution_filter */ AND /*> _json_match */
  LIMIT :cap
) AS capped

-- name: dashboard_select_ids
SELECT id, status, workflow_name FROM executions
WHERE /*> _execution_filter */ AND /*> _json_match */
ORDER BY created_at DESC, id DESC
LIMIT :cap

-- name: dashboard_workflow_stats
SELECT workflow_name, count(*) AS runs,
  SUM(CASE WHEN status IN ('failed', 'compensation_failed') THEN 1 ELSE 0 END) AS failed,
  SUM(CASE WHEN status = 'waiting' THEN 1 ELSE 0 END) AS waiting,
  SUM(CASE WHEN status IN ('pending', 'running', 'compensating') THEN 1 ELSE 0 END) AS active,
  MAX(created_at) AS last_at
FROM executions
GROUP BY workflow_name

-- name: dashboard_last_run
SELECT id, status, created_at FROM executions
WHERE workflow_name = :workflow
ORDER BY created_at DESC, id DESC
LIMIT 1

-- name: dashboard_created_buckets
SELECT (created_at - CAST(:since AS BIGINT)) / CAST(:bucket AS BIGINT) AS bucket, count(*) AS n
FROM executions
WHERE created_at >= :since
GROUP BY 1

-- name: dashboard_finished_buckets
SELECT (completed_at - CAST(:since AS BIGINT)) / CAST(:bucket AS BIGINT) AS bucket, status,
  count(*) AS n
FROM executions
WHERE completed_at >= :since
GROUP BY 1, 2

-- name: dashboard_change_marker
-- a counter that moves when another connection commits (no index to maintain on every step)
SELECT data_version AS updated_at FROM pragma_data_version

-- name: dashboard_audit_insert
INSERT INTO dashboard_audit (at, actor, role, action, target, params, outcome, detail, remote)
VALUES (:at, :actor, :role, :action, :target, :params, :outcome, :detail, :remote)
RETURNING id

-- name: dashboard_audit_list
SELECT * FROM dashboard_audit
WHERE (CAST(:actor AS TEXT) IS NULL OR actor = :actor)
  AND (CAST(:action AS TEXT) IS NULL OR action = :action)
  AND (CAST(:target AS TEXT) IS NULL OR target = :target)
  AND (CAST(:outcome AS TEXT) IS NULL OR outcome = :outcome)
  AND (CAST(:before_id AS BIGINT) IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit
