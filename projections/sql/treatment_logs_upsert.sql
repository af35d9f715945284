INSERT INTO treatment_logs (device_id, record_no, real_user_id, treatment_date, last_intensity,
                            treatment_time, movement, finish_flag, log_file_id, log_data, is_temp,
                            created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
ON CONFLICT (device_id, record_no) DO UPDATE
SET real_user_id = EXCLUDED.real_user_id, treatment_date = EXCLUDED.treatment_date,
    last_intensity = EXCLUDED.last_intensity, treatment_time = EXCLUDED.treatment_time,
    movement = EXCLUDED.movement, finish_flag = EXCLUDED.finish_flag,
    log_file_id = EXCLUDED.log_file_id, log_data = EXCLUDED.log_data,
    is_temp = EXCLUDED.is_temp, updated_at = EXCLUDED.updated_at
