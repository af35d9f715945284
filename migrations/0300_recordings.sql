-- KooDTX sync read models (inline projections `recordings` and `sync_logs`).
CREATE SEQUENCE sync_log_id_seq;

CREATE TABLE recording_sessions (
    session_id          TEXT PRIMARY KEY,
    owner_id            BIGINT      NOT NULL,
    start_time          TIMESTAMPTZ NOT NULL,
    end_time            TIMESTAMPTZ,
    is_active           BOOLEAN     NOT NULL,
    enabled_sensors     JSONB       NOT NULL DEFAULT '[]',
    sample_rate         BIGINT,
    notes               TEXT,
    data_count          BIGINT      NOT NULL DEFAULT 0,
    is_uploaded         BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    -- Version of the recording stream (every event, sync logs included): the command's
    -- expected version, so it never folds the (large) stream.
    stream_version      BIGINT      NOT NULL,
    -- Log position of the newest change to the session or its samples: the pull cursor.
    last_transaction_id BIGINT      NOT NULL,
    last_position       BIGINT      NOT NULL
);
CREATE INDEX recording_sessions_owner_idx ON recording_sessions (owner_id, updated_at DESC);

CREATE TABLE sensor_samples (
    session_id  TEXT        NOT NULL,
    sensor_type TEXT        NOT NULL,
    timestamp   BIGINT      NOT NULL,
    data        JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session_id, sensor_type, timestamp)
);

CREATE TABLE sync_logs (
    id            BIGINT PRIMARY KEY,
    account_id    BIGINT      NOT NULL,
    session_id    TEXT,
    sync_type     TEXT        NOT NULL,
    status        TEXT        NOT NULL,
    total_records BIGINT      NOT NULL,
    inserted      BIGINT      NOT NULL,
    updated       BIGINT      NOT NULL,
    duplicates    BIGINT      NOT NULL,
    errors        BIGINT      NOT NULL,
    sensor_types  JSONB       NOT NULL,
    bytes         BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX sync_logs_account_idx ON sync_logs (account_id, created_at DESC, id DESC);
