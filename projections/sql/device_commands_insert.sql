INSERT INTO device_commands (command_id, device_id, channel, requested_by, sent_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (command_id) DO NOTHING
