-- Schedules (cron or interval) and their fire records.
-- next_run_at is NULL while a schedule is disabled; the scheduler only reads
-- the due end of the schedules_due index. schedule_fires holds one row per
-- (schedule, tick): the unique key that makes each tick fire exactly once.
CREATE TABLE schedules (
  name TEXT PRIMARY KEY,
  workflow_name TEXT NOT NULL,
  cron TEXT,
  every_ms INTEGER,
  timezone TEXT NOT NULL,
  input TEXT,
  queue TEXT,
  priority INTEGER NOT NULL DEFAULT 0,
  enabled INTEGER NOT NULL DEFAULT 1,
  catch_up TEXT NOT NULL DEFAULT 'latest',
  overlap TEXT NOT NULL DEFAULT 'allow',
  declared INTEGER NOT NULL DEFAULT 0,
  next_run_at INTEGER,
  last_run_at INTEGER,
  last_tick_at INTEGER,
  last_execution_id TEXT,
  skipped_count INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;
CREATE INDEX schedules_workflow ON schedules (workflow_name);

CREATE TABLE schedule_fires (
  schedule_name TEXT NOT NULL,
  tick_at INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  execution_id TEXT,
  fired_at INTEGER NOT NULL,
  PRIMARY KEY (schedule_name, tick_at)
);
CREATE INDEX schedule_fires_tick ON schedule_fires (tick_at);
