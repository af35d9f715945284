INSERT INTO sync_logs (id, account_id, session_id, sync_type, status, total_records, inserted,
                       updated, duplicates, errors, sensor_types, bytes, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
