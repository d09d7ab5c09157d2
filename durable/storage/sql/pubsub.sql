-- Cross-process wake-ups and pub/sub (durable.transport.*).
-- pg_* queries run on PostgreSQL only, outbox_* on SQLite only.

-- name: commit_message
-- a message written inside a storage commit (postgres/pubsub.sql: a NOTIFY instead)
INSERT INTO pubsub_outbox (origin, body, created_at) VALUES (:origin, :body, :now)

-- name: pg_notify_pairs
SELECT pg_notify(c, t)
FROM unnest(CAST(:channels AS TEXT[]), CAST(:texts AS TEXT[])) AS x(c, t)

-- name: pg_payload_insert
INSERT INTO pubsub_payloads (body, created_at) VALUES (:body, :now) RETURNING id

-- name: pg_payload_get
SELECT body FROM pubsub_payloads WHERE id = :id

-- name: pg_payload_trim
DELETE FROM pubsub_payloads WHERE created_at < :before

-- name: outbox_after
SELECT id, origin, body FROM pubsub_outbox WHERE id > :after ORDER BY id LIMIT :limit

-- name: outbox_last_id
SELECT COALESCE(MAX(id), 0) AS id FROM pubsub_outbox

-- name: outbox_trim
DELETE FROM pubsub_outbox WHERE created_at < :before
