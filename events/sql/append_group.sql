-- Several commands' appends, one statement, one commit (migrations/0700_append_group.sql).
SELECT appended, appended_positions, appended_xid, appended_at
FROM append_group($1::text[], $2::bigint[], $3::int[], $4::uuid[], $5::text[], $6::int[],
                  $7::jsonb[], $8::jsonb[])
