-- Per day of the stored treatment_date: summed time, mean intensity, summed movement (logged
-- with treatments plus IMU samples by UTC day); only days with data.
WITH t AS (
    SELECT treatment_date::date AS day, sum(treatment_time)::bigint AS time,
           avg(last_intensity)::float8 AS intensity, sum(movement)::bigint AS movement
    FROM treatment_logs
    WHERE real_user_id = $1 AND treatment_date::date BETWEEN $2 AND $3
    GROUP BY 1
), m AS (
    SELECT (to_timestamp(ts) AT TIME ZONE 'UTC')::date AS day, sum(val)::bigint AS movement
    FROM movement_samples
    WHERE real_user_id = $1 AND (to_timestamp(ts) AT TIME ZONE 'UTC')::date BETWEEN $2 AND $3
    GROUP BY 1
)
SELECT COALESCE(t.day, m.day) AS day, COALESCE(t.time, 0), COALESCE(t.intensity, 0)::float8,
       (COALESCE(t.movement, 0) + COALESCE(m.movement, 0))::bigint
FROM t FULL JOIN m ON m.day = t.day
ORDER BY 1
