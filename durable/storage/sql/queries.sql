-- Named queries shared by SQLite and PostgreSQL. Parameters are :name; a
-- dialect file (sql/<dialect>/queries.sql) overrides a query by name.
-- Nullable filter parameters are CAST so PostgreSQL can type them. Names starting
-- with _ are fragments, included with /*> _name */ (see storage/sqlfile.py).

-- name: insert_execution
-- a run id given twice (a keyed start, a child's deterministic id) inserts nothing the
-- second time; the caller reads the stored run in the same transaction
INSERT INTO executions (id, workflow_name, workflow_version, status, queue, priority, input,
  context, current_step, attempts, parent_id, parent_step, schedule_name, schedule_tick_at, wake_at,
  limit_keys, trace_context, created_at, updated_at)
VALUES (:id, :workflow_name, :workflow_version, :status, :queue, :priority, :input,
  :context, :current_step, '{}', :parent_id, :parent_step, :schedule_name, :schedule_tick_at, :wake_at,
  :limit_keys, :trace_context, :now, :now)
ON CONFLICT (id) DO NOTHING

-- name: get_execution
SELECT * FROM executions WHERE id = :id

-- name: lock_execution
-- serialises wait registration with event/input delivery for one run (PostgreSQL: FOR UPDATE)
SELECT id FROM executions WHERE id = :id

-- name: find_ids_by_prefix
-- a literal prefix (no LIKE: no wildcards to escape, case-sensitive on both backends)
SELECT id FROM executions
WHERE substr(id, 1, length(CAST(:id_prefix AS TEXT))) = :id_prefix
ORDER BY id LIMIT :limit

-- name: find_ids_by_suffix
-- a literal suffix (a short id is the id's last group), compared like the prefix above
SELECT id FROM executions
WHERE substr(id, length(id) - length(CAST(:id_suffix AS TEXT)) + 1) = :id_suffix
ORDER BY id LIMIT :limit

-- name: _terminal_statuses
-- the finished statuses (models.TERMINAL_STATUSES; a unit test keeps them equal)
('completed', 'failed', 'cancelled', 'compensated', 'compensation_failed')

-- name: _statuses
SELECT value FROM json_each(:statuses)

-- name: _execution_filter
(CAST(:workflow AS TEXT) IS NULL OR workflow_name = :workflow)
  AND (CAST(:statuses AS TEXT) IS NULL OR status IN (/*> _statuses */))
  AND (CAST(:queue AS TEXT) IS NULL OR queue = :queue)
  AND (CAST(:parent_id AS TEXT) IS NULL OR parent_id = :parent_id)
  AND (CAST(:schedule AS TEXT) IS NULL OR schedule_name = :schedule)
  AND (CAST(:since AS BIGINT) IS NULL OR created_at >= :since)
  AND (CAST(:until AS BIGINT) IS NULL OR created_at < :until)
  AND (CAST(:id_prefix AS TEXT) IS NULL
    OR substr(id, 1, length(CAST(:id_prefix AS TEXT))) = :id_prefix)

-- name: _after_cursor
(CAST(:cursor_at AS BIGINT) IS NULL OR created_at < :cursor_at
  OR (created_at = :cursor_at AND id < :cursor_id))

-- name: list_executions
SELECT * FROM executions
WHERE /*> _execution_filter */ AND /*> _after_cursor */
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- name: list_children
SELECT * FROM executions WHERE parent_id = :id ORDER BY created_at, id

-- name: active_descendants
WITH RECURSIVE tree(id) AS (
  SELECT id FROM executions WHERE parent_id = :id
  UNION
  SELECT e.id FROM executions e JOIN tree t ON e.parent_id = t.id
)
SELECT e.* FROM executions e JOIN tree t ON e.id = t.id
WHERE e.status NOT IN /*> _terminal_statuses */

-- name: list_steps
SELECT * FROM step_executions WHERE execution_id = :id ORDER BY started_at, id

-- name: completed_steps
SELECT step_name, step_type, result, completed_at, id FROM step_executions
WHERE execution_id = :id AND status = 'completed' ORDER BY completed_at, id

-- name: _claim_set
lock_token = :claim_token, locked_by = :worker_id, heartbeat_at = :now,
  status = CASE WHEN status IN ('pending', 'waiting') THEN 'running' ELSE status END,
  attempt = attempt + 1, started_at = COALESCE(started_at, :now), updated_at = :now

-- name: _claimable
-- a run the claim of a queue may take now (limited claims use it too: sql/limits.sql)
queue = :claim_queue AND lock_token IS NULL AND wake_at IS NOT NULL AND wake_at <= :now
  AND deaths < 2 AND status NOT IN /*> _terminal_statuses */

-- name: _ready
-- never a terminal run, whatever its wake time; suspects (two worker deaths or more
-- since their last checkpoint) only through
-- claim_suspect, by a worker that runs them alone
SELECT id FROM executions
WHERE /*> _claimable */ AND /*> _known_workflow */
ORDER BY priority DESC, wake_at
LIMIT :claim_limit

-- name: claim
UPDATE executions SET /*> _claim_set */
WHERE id IN (/*> _ready */)
RETURNING *

-- name: _ready_suspect
SELECT id FROM executions
WHERE queue = :claim_queue AND lock_token IS NULL AND wake_at IS NOT NULL AND wake_at <= :now
  AND deaths >= 2
  AND status NOT IN /*> _terminal_statuses */
ORDER BY priority DESC, wake_at
LIMIT 1

-- name: claim_suspect
UPDATE executions SET /*> _claim_set */
WHERE id IN (/*> _ready_suspect */)
RETURNING *

-- name: suspect_waiting
SELECT id FROM executions
WHERE queue = :claim_queue AND lock_token IS NULL AND wake_at IS NOT NULL AND wake_at <= :now
  AND deaths >= 2
LIMIT 1

-- name: _save_set
status = :status, context = :context, current_step = :current_step,
  attempts = :attempts, result = :result, error = :error, queue = :queue,
  wake_at = CASE WHEN :suspend = 1 AND wakeups <> :seen_wakeups THEN :now
    ELSE CAST(:wake_at AS BIGINT) END,
  lock_token = :new_token, locked_by = :locked_by, deadline_at = :deadline_at,
  completed_at = :completed_at, updated_at = :now, crashes = 0, deaths = 0

-- name: save_execution
UPDATE executions SET /*> _save_set */
WHERE id = :id AND lock_token = :token

-- name: save_progress
-- the common mid-run checkpoint: only columns no index covers change
UPDATE executions SET context = :context, current_step = :current_step, attempts = :attempts,
  deadline_at = :deadline_at, updated_at = :now, crashes = 0, deaths = 0
WHERE id = :id AND lock_token = :token

-- name: insert_step
INSERT INTO step_executions (id, execution_id, step_name, step_type, status, attempt, result, error,
  logs, started_at, completed_at, duration_ms, next_retry_at)
VALUES (:id, :execution_id, :step_name, :step_type, :status, :attempt, :result, :error,
  :logs, :started_at, :completed_at, :duration_ms, :next_retry_at)

-- name: insert_wait
INSERT INTO waits (id, execution_id, step_name, seq, kind, name, mode, status, value, timeout_at,
  input_type, prompt, metadata, spec, child_id, created_at, resolved_at)
VALUES (:id, :execution_id, :step_name, :seq, :kind, :name, :mode, :status, :value, :timeout_at,
  :input_type, :prompt, :metadata, :spec, :child_id, :now, :resolved_at)
ON CONFLICT (execution_id, step_name, seq, name) DO NOTHING

-- name: waits_for_step
SELECT * FROM waits WHERE execution_id = :execution_id AND step_name = :step_name
ORDER BY seq, name

-- name: get_wait
SELECT * FROM waits WHERE id = :id

-- name: resolve_wait
UPDATE waits SET status = :status, value = :value, resolved_at = :now
WHERE id = :id AND status = 'pending'

-- name: reopen_wait
UPDATE waits SET status = 'pending', value = NULL, resolved_at = NULL WHERE id = :id

-- name: cancel_wait_siblings
UPDATE waits SET status = 'cancelled', resolved_at = :now
WHERE execution_id = :execution_id AND step_name = :step_name AND seq = :seq
  AND status = 'pending' AND id <> :id

-- name: count_group_pending
SELECT count(*) AS n FROM waits
WHERE execution_id = :execution_id AND step_name = :step_name AND seq = :seq AND status = 'pending'

-- name: input_waits_named
SELECT * FROM waits WHERE execution_id = :execution_id AND kind = 'input' AND name = :name
ORDER BY created_at

-- name: first_pending_wait
SELECT * FROM waits
WHERE execution_id = :execution_id AND kind = :kind AND name = :name AND status = 'pending'
ORDER BY created_at, seq LIMIT 1

-- name: pending_child_wait
SELECT * FROM waits WHERE child_id = :child_id AND kind = 'child' AND status = 'pending'

-- name: cancel_pending_waits
UPDATE waits SET status = 'cancelled', resolved_at = :now
WHERE execution_id = :execution_id AND status = 'pending'

-- name: reset_step_waits
DELETE FROM waits WHERE execution_id = :execution_id AND step_name = :step_name
  AND status IN ('timed_out', 'cancelled')

-- name: inbox_insert
INSERT INTO inbox (execution_id, kind, name, payload, sent_at)
VALUES (:execution_id, :kind, :name, :payload, :now)
RETURNING id

-- name: inbox_oldest
SELECT * FROM inbox
WHERE execution_id = :execution_id AND kind = :kind AND name = :name AND consumed_at IS NULL
ORDER BY id LIMIT 1

-- name: inbox_consume
UPDATE inbox SET consumed_at = :now, wait_id = :wait_id WHERE id = :id AND consumed_at IS NULL

-- name: inbox_discard
DELETE FROM inbox WHERE execution_id = :execution_id AND consumed_at IS NULL

-- name: wake_execution
UPDATE executions SET
  wake_at = CASE WHEN wake_at IS NOT NULL AND wake_at < :now THEN wake_at ELSE :now END,
  wakeups = wakeups + 1, updated_at = :now
WHERE id = :id
  AND status NOT IN /*> _terminal_statuses */

-- name: cancel_execution
UPDATE executions SET status = 'cancelled', error = :error, lock_token = NULL, locked_by = NULL,
  wake_at = NULL, completed_at = :now, updated_at = :now
WHERE id = :id
  AND status NOT IN /*> _terminal_statuses */

-- name: cancel_to_compensate
-- cancel(..., compensate=True): the run is released to a worker that has its code, which
-- runs the compensations of its finished steps and ends it compensated / compensation_failed
UPDATE executions SET status = 'compensating', error = :error, lock_token = NULL,
  locked_by = NULL, wake_at = :now, updated_at = :now
WHERE id = :id
  AND status NOT IN /*> _terminal_statuses */

-- name: cancel_waiting_step
-- the step a cancelled run was waiting in is recorded as cancelled (its latest attempt)
UPDATE step_executions SET status = 'cancelled'
WHERE id = (SELECT id FROM step_executions WHERE execution_id = :execution_id
            ORDER BY started_at DESC, id DESC LIMIT 1)
  AND status IN ('waiting', 'snoozed')

-- name: retry_execution
UPDATE executions SET status = 'pending', error = NULL, result = NULL, attempts = :attempts,
  wake_at = :now, completed_at = NULL, deadline_at = NULL, updated_at = :now
WHERE id = :id AND status = 'failed' AND lock_token IS NULL

-- name: stale_claims
-- dead: the claiming worker stopped heart-beating too (not a claim merely orphaned by a
-- commit whose outcome its live worker could not learn)
SELECT e.id, e.workflow_name, e.locked_by, e.lock_token, e.current_step,
  CASE WHEN w.heartbeat_at IS NULL OR w.heartbeat_at < :stale_before THEN 1 ELSE 0 END AS dead
FROM executions e LEFT JOIN workers w ON w.id = e.locked_by
WHERE e.lock_token IS NOT NULL AND e.heartbeat_at < :stale_before
ORDER BY e.heartbeat_at

-- name: recover_claim
-- the worker died (or lost the database) holding the claim: one more death on the run's
-- budget; it becomes a suspect, run alone until its next checkpoint
UPDATE executions SET lock_token = NULL, locked_by = NULL, wake_at = :now, updated_at = :now,
  status = CASE WHEN status = 'running' THEN 'pending' ELSE status END,
  crashes = crashes + :dead, deaths = deaths + :dead
WHERE id = :id AND lock_token = :token AND heartbeat_at < :stale_before
RETURNING id, crashes, deaths

-- name: release_worker_claims
UPDATE executions SET lock_token = NULL, locked_by = NULL, wake_at = :now, updated_at = :now,
  status = CASE WHEN status = 'running' THEN 'pending' ELSE status END
WHERE locked_by = :worker_id AND lock_token IS NOT NULL

-- name: heartbeat_claims
-- only the claims a thread of this worker is running (a JSON array of lock tokens)
UPDATE executions SET heartbeat_at = :now
WHERE locked_by = :worker_id AND lock_token IN (SELECT value FROM json_each(:tokens))

-- name: release_claim
-- after an executor failure: the claim ends with the run as stored (never a status from
-- memory); a crash counts on the run's budget
UPDATE executions SET lock_token = NULL, locked_by = NULL, wake_at = :wake_at, updated_at = :now,
  status = CASE WHEN status = 'running' THEN 'pending' ELSE status END,
  crashes = crashes + :crash, crash_error = COALESCE(:crash_error, crash_error)
WHERE id = :id AND lock_token = :token
  AND status NOT IN /*> _terminal_statuses */

-- name: refund_death
-- the worker charged with a death was alive after all (its claim was recovered while
-- it could not reach the database): take the death back
UPDATE executions SET deaths = deaths - 1, crashes = crashes - 1
WHERE id = :id AND deaths > 0 AND crashes > 0

-- name: release_token
-- a claim taken in a commit whose outcome was unknown, that no thread runs
UPDATE executions SET lock_token = NULL, locked_by = NULL, wake_at = :now, updated_at = :now,
  status = CASE WHEN status = 'running' THEN 'pending' ELSE status END
WHERE lock_token = :token

-- name: upsert_worker
INSERT INTO workers (id, hostname, pid, queues, limits, workflows, running, started_at,
  heartbeat_at)
VALUES (:id, :hostname, :pid, :queues, :limits, :workflows, :running, :now, :now)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = :now, running = :running, queues = :queues,
  limits = :limits, workflows = :workflows

-- name: delete_worker
DELETE FROM workers WHERE id = :id

-- name: delete_dead_workers
DELETE FROM workers WHERE heartbeat_at < :before

-- name: list_workers
SELECT * FROM workers ORDER BY started_at

-- name: queue_counts
SELECT queue, status, count(*) AS n FROM executions
WHERE status NOT IN /*> _terminal_statuses */
GROUP BY queue, status

-- name: status_counts
SELECT status, count(*) AS n FROM executions
WHERE (CAST(:since AS BIGINT) IS NULL OR created_at >= :since)
GROUP BY status

-- name: list_pending_waits
SELECT w.*, e.workflow_name AS workflow_name FROM waits w JOIN executions e ON e.id = w.execution_id
WHERE w.kind = :kind AND w.status = 'pending'
  AND (CAST(:execution_id AS TEXT) IS NULL OR w.execution_id = :execution_id)
  AND (CAST(:workflow AS TEXT) IS NULL OR e.workflow_name = :workflow)
  AND (CAST(:name AS TEXT) IS NULL OR w.name = :name)
  AND (CAST(:expires_before AS BIGINT) IS NULL OR w.timeout_at <= :expires_before)
ORDER BY w.created_at, w.id
LIMIT :limit
