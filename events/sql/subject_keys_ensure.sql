-- The live data key of each subject, created where there is none: $2/$3 are fresh keys,
-- used only for the subjects that had no live key. One round trip per append.
WITH wanted AS (
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::bytea[]) AS w (subject, key_id, wrapped_key)
), created AS (
    INSERT INTO subject_keys (subject, key_id, wrapped_key)
    SELECT subject, key_id, wrapped_key FROM wanted
    ON CONFLICT (subject) WHERE wrapped_key IS NOT NULL DO NOTHING
    RETURNING subject, key_id, wrapped_key
)
SELECT subject, key_id, wrapped_key FROM created
UNION ALL
SELECT k.subject, k.key_id, k.wrapped_key
FROM subject_keys k
WHERE k.subject = ANY ($1)
  AND k.wrapped_key IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM created c WHERE c.subject = k.subject)
