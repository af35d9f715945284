-- read_all.sql for some categories only (the function is in migrations/0430).
SELECT global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version,
       event_id, event_type, schema_version, data, metadata, recorded_at
FROM read_categories($1::text::xid8, $2::bigint, $3::bigint, $4::text[],
                     pg_snapshot_xmin(pg_current_snapshot())) AS e
ORDER BY e.transaction_id, e.global_position
