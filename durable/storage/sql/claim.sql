-- Fragments of the claim (`_ready` in queries.sql includes them).

-- name: _known_workflow
-- a worker takes only runs whose workflow it has the code for, and, for a versioned run,
-- that very version (a rolling deploy: v1 workers leave v2 runs alone and the other way
-- round). :known_names and :known_versions are JSON arrays; a version key is
-- name || char(31) || version.
workflow_name IN (SELECT value FROM json_each(:known_names))
  AND (workflow_version IS NULL
    OR workflow_name || char(31) || workflow_version IN (SELECT value FROM json_each(:known_versions)))

-- name: runnable_groups
-- runs a worker could take now, by workflow, version and queue (with how long the oldest
-- has been due): compared with the live workers to name runs that no worker knows
SELECT workflow_name, workflow_version, queue, count(*) AS n, min(wake_at) AS due_since
FROM executions
WHERE lock_token IS NULL AND wake_at IS NOT NULL AND wake_at <= :now
  AND status NOT IN /*> _terminal_statuses */
GROUP BY workflow_name, workflow_version, queue
ORDER BY min(wake_at)
