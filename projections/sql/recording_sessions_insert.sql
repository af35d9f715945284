INSERT INTO recording_sessions (session_id, owner_id, start_time, end_time, is_active,
                                enabled_sensors, sample_rate, notes, created_at, updated_at,
                                stream_version, last_transaction_id, last_position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12)
