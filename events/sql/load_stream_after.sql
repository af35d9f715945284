-- What a command folds on top of a state it remembers: one stream's events after `$2`, in
-- version order, without the envelope (as load_stream.sql, which is this with `$2` = 0).
SELECT stream_version, event_type, schema_version, data
FROM events
WHERE stream_id = $1 AND stream_version > $2
ORDER BY stream_version
