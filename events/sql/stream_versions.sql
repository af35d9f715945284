SELECT stream_id, max(stream_version) AS version
FROM events
WHERE stream_id = ANY($1::text[])
GROUP BY stream_id
