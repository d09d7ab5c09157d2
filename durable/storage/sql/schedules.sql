-- Schedules: definitions, the due index walk, fire records (see storage/schedules.py).

-- name: insert_schedule
INSERT INTO schedules (name, workflow_name, cron, every_ms, timezone, input, queue, priority,
  enabled, catch_up, overlap, declared, next_run_at, created_at, updated_at)
VALUES (:name, :workflow_name, :cron, :every_ms, :timezone, :input, :queue, :priority,
  :enabled, :catch_up, :overlap, :declared, :next_run_at, :now, :now)
ON CONFLICT (name) DO NOTHING

-- name: get_schedule
SELECT * FROM schedules WHERE name = :name

-- name: list_schedules
SELECT * FROM schedules
WHERE (CAST(:workflow AS TEXT) IS NULL OR workflow_name = :workflow)
  AND (CAST(:enabled AS INTEGER) IS NULL OR enabled = :enabled)
ORDER BY name

-- name: update_schedule
UPDATE schedules SET workflow_name = :workflow_name, cron = :cron, every_ms = :every_ms,
  timezone = :timezone, input = :input, queue = :queue, priority = :priority,
  catch_up = :catch_up, overlap = :overlap, declared = :declared,
  next_run_at = CASE WHEN :reschedule = 1 AND enabled = 1 THEN CAST(:next_run_at AS BIGINT)
    ELSE next_run_at END,
  updated_at = :now
WHERE name = :name

-- name: set_schedule_enabled
UPDATE schedules SET enabled = :enabled, next_run_at = :next_run_at, updated_at = :now
WHERE name = :name AND enabled <> :enabled

-- name: delete_schedule
DELETE FROM schedules WHERE name = :name

-- name: delete_schedule_fires
DELETE FROM schedule_fires WHERE schedule_name = :name

-- name: due_schedules
SELECT * FROM schedules
WHERE next_run_at IS NOT NULL AND next_run_at <= :now
  AND workflow_name IN (SELECT value FROM json_each(:workflows))
ORDER BY next_run_at, name
LIMIT :limit

-- name: next_schedule_due
SELECT next_run_at FROM schedules
WHERE next_run_at IS NOT NULL AND workflow_name IN (SELECT value FROM json_each(:workflows))
ORDER BY next_run_at
LIMIT 1

-- name: advance_schedule
UPDATE schedules SET next_run_at = :next_run_at, updated_at = :now
WHERE name = :name AND next_run_at = :expected

-- name: insert_schedule_fire
INSERT INTO schedule_fires (schedule_name, tick_at, outcome, execution_id, fired_at)
VALUES (:name, :tick_at, :outcome, :execution_id, :now)
ON CONFLICT (schedule_name, tick_at) DO NOTHING

-- name: schedule_active_run
SELECT id FROM executions
WHERE schedule_name = :name
  AND status NOT IN /*> _terminal_statuses */
LIMIT 1

-- name: record_schedule_run
UPDATE schedules SET last_run_at = :now, last_tick_at = :tick_at,
  last_execution_id = :execution_id
WHERE name = :name

-- name: record_schedule_skip
UPDATE schedules SET skipped_count = skipped_count + 1, last_tick_at = :tick_at WHERE name = :name

-- name: prune_schedule_fires
DELETE FROM schedule_fires WHERE tick_at < :before
