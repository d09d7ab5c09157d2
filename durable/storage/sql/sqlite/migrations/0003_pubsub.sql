-- Pub/sub across processes on one SQLite file: publishers append events here,
-- subscribers poll PRAGMA data_version and read the rows after the last they saw.
-- Old rows are trimmed by the publishers.
CREATE TABLE pubsub_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  origin TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX pubsub_outbox_created ON pubsub_outbox (created_at);
