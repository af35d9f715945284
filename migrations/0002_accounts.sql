-- Read model of accounts (inline projection `accounts`): logins, lookups and uniqueness.
CREATE SEQUENCE account_id_seq;

CREATE TABLE accounts (
    id                  BIGINT PRIMARY KEY,
    email               TEXT        NOT NULL,
    username            TEXT,
    password_hash       TEXT        NOT NULL,
    role                TEXT        NOT NULL,
    is_active           BOOLEAN     NOT NULL DEFAULT TRUE,
    is_verified         BOOLEAN     NOT NULL DEFAULT FALSE,
    full_name           TEXT,
    phone               TEXT,
    organization        TEXT,
    avatar_url          TEXT,
    first_name          TEXT,
    last_name           TEXT,
    birthdate           TEXT,
    gender              TEXT,
    register_type       TEXT,
    national_code       TEXT,
    device_id           TEXT,
    is_push_agree       BOOLEAN     NOT NULL DEFAULT FALSE,
    push_agreed_at      TIMESTAMPTZ,
    is_marketing_agree  BOOLEAN     NOT NULL DEFAULT FALSE,
    marketing_agreed_at TIMESTAMPTZ,
    password_changed_at TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    deleted_at          TIMESTAMPTZ
);
-- Uniqueness is enforced here, inside the registering transaction: of two concurrent
-- registrations of one email, exactly one commits.
CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email));
CREATE UNIQUE INDEX accounts_username_key ON accounts (lower(username)) WHERE username IS NOT NULL;
CREATE UNIQUE INDEX accounts_device_id_key ON accounts (device_id) WHERE device_id IS NOT NULL;
