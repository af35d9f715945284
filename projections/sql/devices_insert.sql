INSERT INTO devices (id, public_id, unique_id, serial_code, mac_id, name, device_type, project_id,
                     hardware_id, now_firmware_id, firmware_version, ip_address, group_id,
                     owner_id, description, status, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)
