SELECT global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version,
       event_id, event_type, schema_version, data, metadata, recorded_at
FROM events
WHERE stream_id = $1 AND stream_version > $2
ORDER BY stream_version
LIMIT $3
