-- For rebuilds of inline projections only: the rebuild holds the read model's tables, so every
-- transaction that could add to them has either committed (and is visible here) or is waiting.
-- Hence the bound is the snapshot's xmax (every xid it sees), not the reader's xmin.
SELECT global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version,
       event_id, event_type, schema_version, data, metadata, recorded_at
FROM read_categories($1::text::xid8, $2::bigint, $3::bigint, $4::text[],
                     pg_snapshot_xmax(pg_current_snapshot())) AS e
ORDER BY e.transaction_id, e.global_position
