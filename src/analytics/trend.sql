-- Trend of one metric of one device in [$2, $3): count, mean, population std, min, max and the
-- least-squares slope of value against hours since $2, in numeric arithmetic.
WITH s AS (
    SELECT value AS v, extract(epoch FROM ts - $2) / 3600 AS t
    FROM measurements
    WHERE device_id = $1 AND metric = $4 AND ts >= $2 AND ts < $3
), sums AS (
    SELECT count(*)::numeric AS n, sum(t) AS st, sum(t * t) AS stt, sum(t * v) AS stv,
           sum(v) AS sv, avg(v) AS mean, stddev_pop(v) AS std, min(v) AS min, max(v) AS max
    FROM s
)
SELECT n::bigint AS count,
       round(mean, 10) AS mean,
       round(std, 10) AS std,
       min, max,
       CASE WHEN n * stt - st * st = 0 THEN NULL
            ELSE round((n * stv - st * sv) / (n * stt - st * st), 10) END AS slope
FROM sums
