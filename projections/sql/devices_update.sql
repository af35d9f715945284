UPDATE devices
SET name             = COALESCE($2, name),
    device_type      = COALESCE($3, device_type),
    status           = COALESCE($4, status),
    firmware_version = COALESCE($5, firmware_version),
    ip_address       = COALESCE($6, ip_address),
    group_id         = COALESCE($7, group_id),
    owner_id         = COALESCE($8, owner_id),
    description      = CASE WHEN $11 THEN $9 ELSE description END,
    updated_at       = $10
WHERE id = $1
