-- Operations: an index for retention (finished runs by status and age).
CREATE INDEX IF NOT EXISTS executions_finished ON executions (status, completed_at)
  WHERE completed_at IS NOT NULL;
