-- Fleet-wide queue limits, enforced inside the claim (storage/limiter.py).
-- A slot is a claim: a run of the queue whose lock_token is set. The queue's row in
-- limit_buckets (key '') is locked first, so the limited claims of one queue take
-- turns and each counts the slots of the ones before it.

-- name: _limit_key
-- the run's key on :claim_queue (NULL: not keyed there)
(SELECT value FROM json_each(e.limit_keys) WHERE key = :claim_queue)

-- name: _id_list
SELECT value FROM json_each(:ids)

-- name: limit_bucket_read
SELECT tokens, refilled_at FROM limit_buckets WHERE queue = :claim_queue AND key = ''

-- name: limit_bucket_lock
-- PostgreSQL adds FOR UPDATE; on SQLite the claim's BEGIN IMMEDIATE is the lock
SELECT tokens, refilled_at FROM limit_buckets WHERE queue = :claim_queue AND key = ''

-- name: limit_bucket_create
INSERT INTO limit_buckets (queue, key, tokens, refilled_at)
VALUES (:claim_queue, '', :tokens, :now)
ON CONFLICT (queue, key) DO NOTHING

-- name: limit_bucket_set
UPDATE limit_buckets SET tokens = :tokens, refilled_at = :refilled_at
WHERE queue = :claim_queue AND key = ''

-- name: limit_held
SELECT count(*) AS n FROM executions WHERE queue = :claim_queue AND lock_token IS NOT NULL

-- name: _limit_held_by_key
SELECT /*> _limit_key */ AS k, count(*) AS n FROM executions e
WHERE e.queue = :claim_queue AND e.lock_token IS NOT NULL
GROUP BY 1

-- name: _limit_ranked
-- claimable runs, numbered within their key in claim order
SELECT e.id, e.priority, e.wake_at, /*> _limit_key */ AS k,
  ROW_NUMBER() OVER (PARTITION BY /*> _limit_key */ ORDER BY e.priority DESC, e.wake_at, e.id) AS rn
FROM executions e
WHERE /*> _claimable */

-- name: _limit_key_tokens
-- whole tokens in the key's bucket at :now (a key without a bucket has a full one)
COALESCE(MIN(:burst, b.tokens + MAX(0, :now - b.refilled_at) * :key_rate), :burst)

-- name: _limit_key_allows
-- a per-key limit lets run r go: its key has a free slot and a token, counting the
-- runs of the key ahead of it (unkeyed runs are not held per key)
r.k IS NULL OR (
  (CAST(:per_key AS BIGINT) IS NULL OR COALESCE(h.n, 0) + r.rn <= :per_key)
  AND (CAST(:key_rate AS DOUBLE PRECISION) IS NULL OR r.rn <= /*> _limit_key_tokens */))

-- name: _limit_key_buckets
SELECT key AS k, tokens, refilled_at FROM limit_buckets WHERE queue = :claim_queue AND key <> ''

-- name: _limit_keyed
-- claimable runs (r) with their key's slots in use (h) and bucket (b)
WITH held AS (/*> _limit_held_by_key */), ranked AS (/*> _limit_ranked */),
  buckets AS (/*> _limit_key_buckets */)
SELECT r.id FROM ranked r LEFT JOIN held h ON h.k = r.k LEFT JOIN buckets b ON b.k = r.k

-- name: limit_ready_by_key
-- the next runs in priority order that their key's limits let go: a busy key holds
-- back only its own runs (no head-of-line blocking)
/*> _limit_keyed */
WHERE /*> _limit_key_allows */
ORDER BY r.priority DESC, r.wake_at, r.id
LIMIT :claim_limit

-- name: claim_ids
UPDATE executions SET /*> _claim_set */
WHERE id IN (/*> _id_list */) AND /*> _claimable */ AND /*> _known_workflow */
RETURNING *

-- name: limit_key_blocked
-- claimable runs a per-key limit holds back now
SELECT count(*) AS n FROM (/*> _limit_keyed */ WHERE NOT (/*> _limit_key_allows */)) x

-- name: limit_key_bucket_read
SELECT tokens, refilled_at FROM limit_buckets WHERE queue = :claim_queue AND key = :key

-- name: limit_key_bucket_set
INSERT INTO limit_buckets (queue, key, tokens, refilled_at)
VALUES (:claim_queue, :key, :tokens, :refilled_at)
ON CONFLICT (queue, key) DO UPDATE SET tokens = :tokens, refilled_at = :refilled_at

-- name: limit_ready_count
SELECT count(*) AS n FROM executions WHERE /*> _claimable */

-- name: limit_held_of_key
SELECT count(*) AS n FROM executions e
WHERE e.queue = :claim_queue AND e.lock_token IS NOT NULL AND /*> _limit_key */ = :key

-- name: limit_ahead_of_key
-- claimable runs of the key that a claim would take before the given one
SELECT count(*) AS n FROM executions e
WHERE /*> _claimable */ AND /*> _limit_key */ = :key
  AND (e.priority > :priority OR (e.priority = :priority
    AND (e.wake_at < :wake_at OR (e.wake_at = :wake_at AND e.id < :id))))

-- name: limit_key_buckets_prune
-- a key's bucket that has refilled to full is the same as none (made full on first use)
DELETE FROM limit_buckets WHERE queue = :claim_queue AND key <> '' AND refilled_at < :before
