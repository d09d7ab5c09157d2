-- Workflow versioning: the definition version a run started with (NULL: unversioned).
ALTER TABLE executions ADD COLUMN workflow_version TEXT;
