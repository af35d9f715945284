UPDATE devices SET last_log_file_id = GREATEST(last_log_file_id, $2) WHERE id = $1
