-- Serialise writers per stream for the rest of the transaction. Keys are taken in a fixed
-- order so two multi-stream appends can never deadlock on each other.
SELECT pg_advisory_xact_lock(k)
FROM (SELECT DISTINCT hashtextextended(s, 0) AS k FROM unnest($1::text[]) AS s ORDER BY k) AS keys
