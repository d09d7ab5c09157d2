-- Core tables: executions, step executions, waits, inbox, workers.
-- Times are UTC epoch milliseconds; JSON is stored as TEXT (durable-json/1).
CREATE TABLE executions (
  id TEXT PRIMARY KEY,
  workflow_name TEXT NOT NULL,
  status TEXT NOT NULL,
  queue TEXT NOT NULL,
  priority BIGINT NOT NULL DEFAULT 0,
  input TEXT,
  context TEXT,
  result TEXT,
  error TEXT,
  current_step TEXT,
  attempts TEXT NOT NULL DEFAULT '{}',
  attempt BIGINT NOT NULL DEFAULT 0,
  parent_id TEXT,
  parent_step TEXT,
  schedule_name TEXT,
  schedule_tick_at BIGINT,
  wake_at BIGINT,
  wakeups BIGINT NOT NULL DEFAULT 0,
  lock_token TEXT,
  locked_by TEXT,
  heartbeat_at BIGINT,
  deadline_at BIGINT,
  started_at BIGINT,
  completed_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX executions_claim ON executions (queue, priority DESC, wake_at)
  WHERE lock_token IS NULL AND wake_at IS NOT NULL;
CREATE INDEX executions_locked ON executions (heartbeat_at) WHERE lock_token IS NOT NULL;
CREATE INDEX executions_created ON executions (created_at, id);
CREATE INDEX executions_workflow ON executions (workflow_name, created_at);
CREATE INDEX executions_status ON executions (status, created_at);
CREATE INDEX executions_parent ON executions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX executions_schedule ON executions (schedule_name, schedule_tick_at)
  WHERE schedule_name IS NOT NULL;

CREATE TABLE step_executions (
  id TEXT PRIMARY KEY,
  execution_id TEXT NOT NULL,
  step_name TEXT NOT NULL,
  step_type TEXT NOT NULL,
  status TEXT NOT NULL,
  attempt BIGINT NOT NULL,
  result TEXT,
  error TEXT,
  logs TEXT,
  started_at BIGINT NOT NULL,
  completed_at BIGINT,
  duration_ms BIGINT,
  next_retry_at BIGINT
);
CREATE INDEX step_executions_execution ON step_executions (execution_id, started_at);

CREATE TABLE waits (
  id TEXT PRIMARY KEY,
  execution_id TEXT NOT NULL,
  step_name TEXT NOT NULL,
  seq BIGINT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  mode TEXT NOT NULL DEFAULT 'one',
  status TEXT NOT NULL,
  value TEXT,
  timeout_at BIGINT,
  input_type TEXT,
  prompt TEXT,
  metadata TEXT,
  spec TEXT,
  child_id TEXT,
  created_at BIGINT NOT NULL,
  resolved_at BIGINT,
  UNIQUE (execution_id, step_name, seq, name)
);
CREATE INDEX waits_pending ON waits (kind, created_at) WHERE status = 'pending';
CREATE INDEX waits_execution ON waits (execution_id, step_name);
CREATE INDEX waits_child ON waits (child_id) WHERE child_id IS NOT NULL;

CREATE TABLE inbox (
  id BIGSERIAL PRIMARY KEY,
  execution_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  payload TEXT,
  sent_at BIGINT NOT NULL,
  consumed_at BIGINT,
  wait_id TEXT
);
CREATE INDEX inbox_unconsumed ON inbox (execution_id, kind, name, id) WHERE consumed_at IS NULL;
CREATE UNIQUE INDEX inbox_one_input ON inbox (execution_id, name)
  WHERE kind = 'input' AND consumed_at IS NULL;

CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  pid BIGINT NOT NULL,
  queues TEXT NOT NULL,
  running BIGINT NOT NULL DEFAULT 0,
  started_at BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL
);
