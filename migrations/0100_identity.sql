-- Identity (issue 3): the rest of the account fields, refresh-token sessions, outbound messages.
ALTER TABLE accounts
    ADD COLUMN is_device_muted              BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN is_device_alim_talk_enabled  BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN is_basestation_alert_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN push_token                   TEXT,
    ADD COLUMN is_phone_number_checked      BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN withdrawn_at                 TIMESTAMPTZ;

-- Refresh tokens are session state, not domain facts: they are not in the event log. Only the
-- SHA-256 of the token's jti is stored. A family is one login's chain of rotations.
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    account_id  BIGINT      NOT NULL,
    family_id   UUID        NOT NULL,
    issued_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_account_idx ON refresh_tokens (account_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- Read model of messages handed to the SMS sender (inline projection `outbound_messages`).
CREATE SEQUENCE message_id_seq;
CREATE TABLE outbound_messages (
    id         BIGINT PRIMARY KEY,
    channel    TEXT        NOT NULL,
    recipient  TEXT        NOT NULL,
    body       TEXT        NOT NULL,
    code       TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbound_messages_recipient_idx ON outbound_messages (recipient, created_at DESC);
