-- For rebuilds of inline projections only: the rebuild holds the read model's tables, so every
-- transaction that could add to them has either committed (and is visible here) or is waiting.
SELECT global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version,
       event_id, event_type, schema_version, data, metadata, recorded_at
FROM events
WHERE (transaction_id, global_position) > ($1::text::xid8, $2::bigint)
  AND category = ANY($4::text[])
ORDER BY transaction_id, global_position
LIMIT $3
