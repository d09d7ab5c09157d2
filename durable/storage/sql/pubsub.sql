-- Cross-process wake-ups and pub/sub (durable.queue.notifiers, durable.pubsub.*).
-- pg_* queries run on PostgreSQL only, outbox_* on SQLite only.

-- name: pg_notify_many
SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS TEXT[])) AS p

-- name: pg_notify_one
SELECT pg_notify(:channel, :text)

-- name: pg_payload_insert
INSERT INTO pubsub_payloads (body, created_at) VALUES (:body, :now) RETURNING id

-- name: pg_payload_get
SELECT body FROM pubsub_payloads WHERE id = :id

-- name: pg_payload_trim
DELETE FROM pubsub_payloads WHERE created_at < :before

-- name: outbox_insert
INSERT INTO pubsub_outbox (origin, body, created_at) VALUES (:origin, :body, :now)

-- name: outbox_after
SELECT id, origin, body FROM pubsub_outbox WHERE id > :after ORDER BY id LIMIT :limit

-- name: outbox_last_id
SELECT COALESCE(MAX(id), 0) AS id FROM pubsub_outbox

-- name: outbox_trim
DELETE FROM pubsub_outbox WHERE created_at < :before
