-- One statement per event: set-based upsert of the samples (last write wins), then the
-- session's sample count, change time and log position. `(xmax = 0)` tells inserts from
-- updates; rows whose data is unchanged are not touched and not returned.
WITH upserted AS (
    INSERT INTO sensor_samples (session_id, sensor_type, timestamp, data, created_at, updated_at)
    SELECT $1, s.sensor_type, s.ts, s.data, $5, $5
    FROM unnest($2::text[], $3::bigint[], $4::jsonb[]) AS s(sensor_type, ts, data)
    ON CONFLICT (session_id, sensor_type, timestamp) DO UPDATE
        SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at
        WHERE sensor_samples.data IS DISTINCT FROM EXCLUDED.data
    RETURNING (xmax = 0) AS inserted
), counted AS (
    SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) AS affected FROM upserted
)
UPDATE recording_sessions r
SET data_count = r.data_count + counted.inserted, updated_at = $5,
    stream_version = $6, last_transaction_id = $7, last_position = $8
FROM counted
WHERE r.session_id = $1
RETURNING counted.inserted, counted.affected
