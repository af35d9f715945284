-- An agree date is set when a consent turns (or is re-affirmed) true and cleared when it ends.
UPDATE accounts
SET is_push_agree       = COALESCE($2, is_push_agree),
    push_agreed_at      = CASE WHEN $2 IS NULL THEN push_agreed_at WHEN $2 THEN $4 END,
    is_marketing_agree  = COALESCE($3, is_marketing_agree),
    marketing_agreed_at = CASE WHEN $3 IS NULL THEN marketing_agreed_at WHEN $3 THEN $4 END,
    updated_at          = $4
WHERE id = $1
