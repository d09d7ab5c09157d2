-- Schedules (cron or interval) and their fire records.
-- next_run_at is NULL while a schedule is disabled; the scheduler only reads
-- the due end of the schedules_due index. schedule_fires holds one row per
-- (schedule, tick): the unique key that makes each tick fire exactly once.
CREATE TABLE schedules (
  name TEXT PRIMARY KEY,
  workflow_name TEXT NOT NULL,
  cron TEXT,
  every_ms BIGINT,
  timezone TEXT NOT NULL,
  input TEXT,
  queue TEXT,
  priority BIGINT NOT NULL DEFAULT 0,
  enabled SMALLINT NOT NULL DEFAULT 1,
  catch_up TEXT NOT NULL DEFAULT 'latest',
  overlap TEXT NOT NULL DEFAULT 'allow',
  declared SMALLINT NOT NULL DEFAULT 0,
  next_run_at BIGINT,
  last_run_at BIGINT,
  last_tick_at BIGINT,
  last_execution_id TEXT,
  skipped_count BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX schedules_workflow ON schedules (workflow_name);

CREATE TABLE schedule_fires (
  schedule_name TEXT NOT NULL,
  tick_at BIGINT NOT NULL,
  outcome TEXT NOT NULL,
  execution_id TEXT,
  fired_at BIGINT NOT NULL,
  PRIMARY KEY (schedule_name, tick_at)
);
CREATE INDEX schedule_fires_tick ON schedule_fires (tick_at);
