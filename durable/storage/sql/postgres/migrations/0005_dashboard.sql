-- Dashboard: the audit log of operator actions, and indexes for its reads
-- (change detection, throughput over time, JSON search inside inputs).
CREATE TABLE dashboard_audit (
  id BIGSERIAL PRIMARY KEY,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT,
  params TEXT,
  outcome TEXT NOT NULL,
  detail TEXT,
  remote TEXT
);
CREATE INDEX dashboard_audit_target ON dashboard_audit (target, id) WHERE target IS NOT NULL;
CREATE INDEX executions_completed ON executions (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX executions_input_jsonb ON executions USING GIN ((CAST(input AS jsonb)) jsonb_path_ops);
