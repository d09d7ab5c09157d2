-- Fleet-wide queue limits. A slot is a claim (lock_token set), so no slot table:
-- the per-key key of a run on each keyed queue it uses ({queue: key}, JSON).
ALTER TABLE executions ADD COLUMN limit_keys TEXT;
-- the limits a worker enforces (JSON {queue: limits}), to find processes that disagree
ALTER TABLE workers ADD COLUMN limits TEXT;
-- token buckets of rate-limited queues (key '' is the queue's own bucket); the queue's
-- row is also what a limited claim locks, so claims of one queue take turns
CREATE TABLE limit_buckets (
  queue TEXT NOT NULL,
  key TEXT NOT NULL DEFAULT '',
  tokens REAL NOT NULL,
  refilled_at INTEGER NOT NULL,
  PRIMARY KEY (queue, key)
)
