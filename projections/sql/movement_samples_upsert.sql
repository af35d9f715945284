-- A resent sample (same device and timestamp) replaces the earlier value.
INSERT INTO movement_samples (device_id, real_user_id, ts, val)
SELECT DISTINCT ON (t.ts) $1, $2, t.ts, t.val
FROM unnest($3::bigint[], $4::bigint[]) WITH ORDINALITY AS t(ts, val, n)
ORDER BY t.ts, t.n DESC
ON CONFLICT (device_id, ts) DO UPDATE SET val = EXCLUDED.val, real_user_id = EXCLUDED.real_user_id
