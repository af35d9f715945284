-- The first response answers the command; later ones leave the time as it is.
UPDATE device_commands SET responded_at = coalesce(responded_at, $2)
WHERE command_id::text = $1
