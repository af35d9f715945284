UPDATE recording_sessions
SET end_time = $2, is_active = $3, notes = $4, updated_at = $5,
    stream_version = $6, last_transaction_id = $7, last_position = $8
WHERE session_id = $1
