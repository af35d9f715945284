-- A batch of samples: the raw rows and both roll-ups in one statement.
-- $1 ids, $2 device ids, $3 metrics, $4 values, $5 units, $6 timestamps (aligned arrays).
WITH samples AS (
    SELECT *
    FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::numeric[], $5::text[], $6::timestamptz[])
         AS t(id, device_id, metric, value, unit, ts)
), raw AS (
    INSERT INTO measurements (id, device_id, metric, value, unit, ts)
    SELECT id, device_id, metric, value, unit, ts FROM samples
), minute AS (
    INSERT INTO telemetry_rollup_1m AS r (device_id, metric, bucket, count, sum, sum_sq, min, max)
    SELECT device_id, metric, date_bin('1 minute', ts, '1970-01-01 00:00:00+00'),
           count(*), sum(value), sum(value * value), min(value), max(value)
    FROM samples
    GROUP BY 1, 2, 3
    ON CONFLICT (device_id, bucket, metric) DO UPDATE SET
        count  = r.count + EXCLUDED.count,
        sum    = r.sum + EXCLUDED.sum,
        sum_sq = r.sum_sq + EXCLUDED.sum_sq,
        min    = LEAST(r.min, EXCLUDED.min),
        max    = GREATEST(r.max, EXCLUDED.max)
)
INSERT INTO telemetry_rollup_1h AS r (device_id, metric, bucket, count, sum, sum_sq, min, max)
SELECT device_id, metric, date_bin('1 hour', ts, '1970-01-01 00:00:00+00'),
       count(*), sum(value), sum(value * value), min(value), max(value)
FROM samples
GROUP BY 1, 2, 3
ON CONFLICT (device_id, bucket, metric) DO UPDATE SET
    count  = r.count + EXCLUDED.count,
    sum    = r.sum + EXCLUDED.sum,
    sum_sq = r.sum_sq + EXCLUDED.sum_sq,
    min    = LEAST(r.min, EXCLUDED.min),
    max    = GREATEST(r.max, EXCLUDED.max)
