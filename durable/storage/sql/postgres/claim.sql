-- PostgreSQL overrides of sql/claim.sql: the known workflows travel as text arrays.

-- name: _known_workflow
workflow_name = ANY(CAST(:known_names AS TEXT[]))
  AND (workflow_version IS NULL
    OR workflow_name || chr(31) || workflow_version = ANY(CAST(:known_versions AS TEXT[])))
