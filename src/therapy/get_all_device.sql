SELECT jsonb_build_object(
    'id', d.id, 'real_user_id', p.id, 'project_id', d.project_id, 'hardware_id', d.hardware_id,
    'now_firmware_id', d.now_firmware_id, 'unique_id', d.unique_id, 'serial_code', d.serial_code,
    'device_alias', d.device_alias, 'mac_id', d.mac_id,
    'created_at', to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'last_log_file_id', d.last_log_file_id, 'root_user_id', p.root_user_id,
    'first_name', p.first_name, 'last_name', p.last_name, 'birthdate', p.birthdate,
    'gender', p.gender)
FROM patients p
LEFT JOIN devices d ON d.id = p.device_id AND d.deleted_at IS NULL
WHERE p.root_user_id = $1
ORDER BY p.id
