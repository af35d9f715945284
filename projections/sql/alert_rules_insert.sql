INSERT INTO alert_rules (id, name, description, metric, condition, threshold, severity,
                         device_group_id, is_active, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
