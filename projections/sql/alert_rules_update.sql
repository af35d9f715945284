-- NULL leaves a field as it is; the nullable fields carry a "was sent" flag ($3, $9).
UPDATE alert_rules SET
    name            = COALESCE($2, name),
    description     = CASE WHEN $3 THEN $4 ELSE description END,
    metric          = COALESCE($5, metric),
    condition       = COALESCE($6, condition),
    threshold       = COALESCE($7, threshold),
    severity        = COALESCE($8, severity),
    device_group_id = CASE WHEN $9 THEN $10 ELSE device_group_id END,
    is_active       = COALESCE($11, is_active),
    updated_at      = $12
WHERE id = $1
