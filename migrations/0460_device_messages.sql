-- Commands sent to devices (inline read model `device_commands`): the ingest finds the account
-- a device's response goes back to by its command id.
CREATE TABLE device_commands (
    command_id   UUID PRIMARY KEY,
    device_id    BIGINT      NOT NULL,
    channel      TEXT        NOT NULL,
    requested_by BIGINT      NOT NULL,
    sent_at      TIMESTAMPTZ NOT NULL,
    responded_at TIMESTAMPTZ
);
