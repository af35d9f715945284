-- What a command folds of a stream holding personal data, with the live data key of its
-- subject (the stream itself) on every row: the key comes with the load, not one trip later.
SELECT e.stream_version, e.event_type, e.schema_version, e.data, k.key_id, k.wrapped_key
FROM events e
LEFT JOIN subject_keys k ON k.subject = $1 AND k.wrapped_key IS NOT NULL
WHERE e.stream_id = $1
ORDER BY e.stream_version
