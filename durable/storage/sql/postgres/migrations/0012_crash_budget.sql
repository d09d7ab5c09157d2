-- A run's budget against crashing the engine: executor failures and worker deaths since
-- its last successful checkpoint. A run with two deaths or more is a suspect: it runs alone.
ALTER TABLE executions ADD COLUMN crashes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN deaths BIGINT NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN crash_error TEXT;
CREATE INDEX executions_suspects ON executions (queue, wake_at)
  WHERE deaths >= 2 AND lock_token IS NULL AND wake_at IS NOT NULL
