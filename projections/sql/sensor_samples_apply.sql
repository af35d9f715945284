-- Applies one `SamplesPushed` event straight from its log row ($1 = global position): the
-- samples are neither shipped back to the client nor parsed again. `inserted` keys are new to
-- the session (the push decided so under the session's lock), so they take a plain insert;
-- `updated` keys overwrite (last write wins). Schema 1 rows hold one `samples` list, applied
-- as updates: the SQL side of the event's upcast. Then the session's sample count, change
-- time and log position. Returns (new rows, rows written, samples in the event).
WITH event AS (
    SELECT data, data->>'session_id' AS session_id, (data->>'pushed_at')::timestamptz AS at
    FROM events WHERE global_position = $1
), inserted AS (
    INSERT INTO sensor_samples (session_id, sensor_type, timestamp, data, created_at, updated_at)
    SELECT e.session_id, s.sensor_type, s.timestamp, coalesce(s.data, 'null'), e.at, e.at
    FROM event e,
         jsonb_to_recordset(e.data->'inserted') AS s(sensor_type TEXT, timestamp BIGINT, data JSONB)
    RETURNING 1
), updated AS (
    INSERT INTO sensor_samples (session_id, sensor_type, timestamp, data, created_at, updated_at)
    SELECT e.session_id, s.sensor_type, s.timestamp, coalesce(s.data, 'null'), e.at, e.at
    FROM event e,
         jsonb_to_recordset(coalesce(e.data->'updated', e.data->'samples'))
             AS s(sensor_type TEXT, timestamp BIGINT, data JSONB)
    ON CONFLICT (session_id, sensor_type, timestamp) DO UPDATE
        SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at
        WHERE sensor_samples.data IS DISTINCT FROM EXCLUDED.data
    RETURNING (xmax = 0) AS inserted
), counted AS (
    SELECT (SELECT count(*) FROM inserted)
               + (SELECT count(*) FILTER (WHERE inserted) FROM updated) AS inserted,
           (SELECT count(*) FROM inserted) + (SELECT count(*) FROM updated) AS written,
           (SELECT coalesce(jsonb_array_length(data->'inserted'), 0)
                   + coalesce(jsonb_array_length(coalesce(data->'updated', data->'samples')), 0)
            FROM event)::bigint AS expected
)
UPDATE recording_sessions r
SET data_count = r.data_count + counted.inserted,
    updated_at = (SELECT at FROM event),
    stream_version = $2, last_transaction_id = $3, last_position = $1
FROM counted
WHERE r.session_id = (SELECT session_id FROM event)
RETURNING counted.inserted, counted.written, counted.expected
