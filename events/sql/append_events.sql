-- One round trip: locks, expectations, idempotency and the insert live in the function
-- (migrations/0400_append_function.sql).
SELECT appended_ids, appended_positions, appended_versions, appended_xid, appended_at
FROM append_events($1::text[], $2::bigint[], $3::int[], $4::uuid[], $5::text[], $6::int[],
                   $7::jsonb[], $8::jsonb[])
