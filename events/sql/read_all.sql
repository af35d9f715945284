-- The reader that never skips: a transaction still in flight holds back everything that
-- committed after it (xid8 + pg_snapshot_xmin), and the (xid, position) pair is the checkpoint.
-- ORDER BY names the table's columns: the bare `transaction_id` would be the bigint output
-- column, which no index is sorted by.
SELECT global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version,
       event_id, event_type, schema_version, data, metadata, recorded_at
FROM events
WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
  AND (transaction_id, global_position) > ($1::text::xid8, $2::bigint)
ORDER BY events.transaction_id, events.global_position
LIMIT $3
