-- PostgreSQL overrides of sql/schedules.sql: several schedulers share the due
-- schedules between them (SKIP LOCKED) instead of queueing on the same rows.

-- name: due_schedules
SELECT * FROM schedules
WHERE next_run_at IS NOT NULL AND next_run_at <= :now
  AND workflow_name IN (SELECT jsonb_array_elements_text(CAST(:workflows AS jsonb)))
ORDER BY next_run_at, name
LIMIT :limit
FOR UPDATE SKIP LOCKED

-- name: next_schedule_due
SELECT next_run_at FROM schedules
WHERE next_run_at IS NOT NULL
  AND workflow_name IN (SELECT jsonb_array_elements_text(CAST(:workflows AS jsonb)))
ORDER BY next_run_at
LIMIT 1
