-- Pub/sub payloads too large for NOTIFY (8000 bytes) travel by reference:
-- the sender stores the body here and notifies its id; old rows are trimmed.
CREATE TABLE pubsub_payloads (
  id BIGSERIAL PRIMARY KEY,
  body TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX pubsub_payloads_created ON pubsub_payloads (created_at);
