-- Whoever holds this row holds the projection: a second worker skips instead of waiting.
SELECT transaction_id, global_position FROM projection_checkpoints WHERE name = $1 FOR UPDATE SKIP LOCKED
