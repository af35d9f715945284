-- An account deleted or withdrawn: its personal columns are emptied (their values exist
-- nowhere else in clear; the log holds them sealed under a key destroyed with this event).
UPDATE accounts
SET deleted_at    = COALESCE(deleted_at, $2),
    withdrawn_at  = CASE WHEN $3 THEN $2 ELSE withdrawn_at END,
    email         = NULL,
    username      = NULL,
    password_hash = '[erased]',
    full_name     = NULL,
    phone         = NULL,
    organization  = NULL,
    avatar_url    = NULL,
    first_name    = NULL,
    last_name     = NULL,
    birthdate     = NULL,
    gender        = NULL,
    national_code = NULL,
    push_token    = NULL,
    updated_at    = $2
WHERE id = $1
