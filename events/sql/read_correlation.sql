SELECT global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version,
       event_id, event_type, schema_version, data, metadata, recorded_at
FROM events
WHERE metadata->>'correlation_id' = $1
ORDER BY transaction_id, global_position
