-- Devices seen in a batch, with the time they were last seen, floored to the minute: the row is
-- rewritten at most once a minute per device (not per message), and the result does not depend
-- on how the log was cut into batches (a rebuild writes what live writes).
-- $1 device ids, $2 seen times.
INSERT INTO device_presence AS p (device_id, last_seen_at)
SELECT d, date_bin('1 minute', at, '1970-01-01 00:00:00+00')
FROM unnest($1::bigint[], $2::timestamptz[]) AS t(d, at)
ON CONFLICT (device_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at
WHERE p.last_seen_at IS NULL OR p.last_seen_at < EXCLUDED.last_seen_at
