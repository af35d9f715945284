UPDATE projection_checkpoints
SET transaction_id = $2, global_position = $3, updated_at = now(),
    last_error = NULL, failing_since = NULL, failures = 0
WHERE name = $1
