-- PostgreSQL overrides of sql/pubsub.sql.

-- name: commit_message
-- the message travels as a NOTIFY, delivered when (and only if) the commit succeeds
SELECT pg_notify(:channel, :body)
