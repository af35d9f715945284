-- What a command folds: one stream's events in version order, without the envelope.
SELECT stream_version, event_type, schema_version, data
FROM events
WHERE stream_id = $1
ORDER BY stream_version
