UPDATE accounts
SET email        = COALESCE($2, email),
    username     = COALESCE($3, username),
    full_name    = COALESCE($4, full_name),
    organization = COALESCE($5, organization),
    avatar_url   = COALESCE($6, avatar_url),
    first_name   = COALESCE($7, first_name),
    last_name    = COALESCE($8, last_name),
    birthdate    = COALESCE($9, birthdate),
    gender       = COALESCE($10, gender),
    phone        = COALESCE($11, phone),
    email_key    = COALESCE($13, email_key),
    updated_at   = $12
WHERE id = $1
