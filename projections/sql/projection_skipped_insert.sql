INSERT INTO projection_skipped (projection, global_position, event_id, event_type, error)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (projection, global_position) DO NOTHING
