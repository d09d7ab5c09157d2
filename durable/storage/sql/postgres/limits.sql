-- PostgreSQL overrides of sql/limits.sql.

-- name: _limit_key
(CAST(e.limit_keys AS jsonb) ->> CAST(:claim_queue AS TEXT))

-- name: _id_list
SELECT jsonb_array_elements_text(CAST(:ids AS jsonb))

-- name: limit_bucket_lock
-- the row lock makes the limited claims of one queue take turns across the fleet
SELECT tokens, refilled_at FROM limit_buckets WHERE queue = :claim_queue AND key = ''
FOR UPDATE

-- name: _limit_key_tokens
COALESCE(LEAST(CAST(:burst AS DOUBLE PRECISION), b.tokens
  + GREATEST(0, :now - b.refilled_at) * CAST(:key_rate AS DOUBLE PRECISION)), :burst)
