INSERT INTO accounts (id, email, username, password_hash, role, full_name, phone, organization,
                      first_name, last_name, birthdate, gender, register_type, national_code,
                      device_id, is_push_agree, push_agreed_at, is_marketing_agree,
                      marketing_agreed_at, password_changed_at, created_at, updated_at, email_key)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
        $16, CASE WHEN $16 THEN $18 END, $17, CASE WHEN $17 THEN $18 END, $18, $18, $18, $19)
