-- Core tables: executions, step executions, waits, inbox, workers.
-- Times are UTC epoch milliseconds; JSON is stored as TEXT (durable-json/1).
CREATE TABLE executions (
  id TEXT PRIMARY KEY,
  workflow_name TEXT NOT NULL,
  status TEXT NOT NULL,
  queue TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  input TEXT,
  context TEXT,
  result TEXT,
  error TEXT,
  current_step TEXT,
  attempts TEXT NOT NULL DEFAULT '{}',
  attempt INTEGER NOT NULL DEFAULT 0,
  parent_id TEXT,
  parent_step TEXT,
  schedule_name TEXT,
  schedule_tick_at INTEGER,
  wake_at INTEGER,
  wakeups INTEGER NOT NULL DEFAULT 0,
  lock_token TEXT,
  locked_by TEXT,
  heartbeat_at INTEGER,
  deadline_at INTEGER,
  started_at INTEGER,
  completed_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
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
  attempt INTEGER NOT NULL,
  result TEXT,
  error TEXT,
  logs TEXT,
  started_at INTEGER NOT NULL,
  completed_at INTEGER,
  duration_ms INTEGER,
  next_retry_at INTEGER
);
CREATE INDEX step_executions_execution ON step_executions (execution_id, started_at);

CREATE TABLE waits (
  id TEXT PRIMARY KEY,
  execution_id TEXT NOT NULL,
  step_name TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  mode TEXT NOT NULL DEFAULT 'one',
  status TEXT NOT NULL,
  value TEXT,
  timeout_at INTEGER,
  input_type TEXT,
  prompt TEXT,
  metadata TEXT,
  spec TEXT,
  child_id TEXT,
  created_at INTEGER NOT NULL,
  resolved_at INTEGER,
  UNIQUE (execution_id, step_name, seq, name)
);
CREATE INDEX waits_pending ON waits (kind, created_at) WHERE status = 'pending';
CREATE INDEX waits_execution ON waits (execution_id, step_name);
CREATE INDEX waits_child ON waits (child_id) WHERE child_id IS NOT NULL;

CREATE TABLE inbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  execution_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  payload TEXT,
  sent_at INTEGER NOT NULL,
  consumed_at INTEGER,
  wait_id TEXT
);
CREATE INDEX inbox_unconsumed ON inbox (execution_id, kind, name, id) WHERE consumed_at IS NULL;
CREATE UNIQUE INDEX inbox_one_input ON inbox (execution_id, name)
  WHERE kind = 'input' AND consumed_at IS NULL;

CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  pid INTEGER NOT NULL,
  queues TEXT NOT NULL,
  running INTEGER NOT NULL DEFAULT 0,
  started_at INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL
);
