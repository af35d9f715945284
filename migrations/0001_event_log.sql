-- The whole event log: one table, one sequence of positions, one notification channel.
CREATE TABLE events (
    global_position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL CHECK (stream_version >= 1),
    event_id        UUID        NOT NULL UNIQUE,
    event_type      TEXT        NOT NULL,
    schema_version  INT         NOT NULL DEFAULT 1,
    data            JSONB       NOT NULL,
    metadata        JSONB       NOT NULL DEFAULT '{}',
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    category        TEXT        GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_reader_idx ON events (transaction_id, global_position);
CREATE INDEX events_category_idx ON events (category, transaction_id, global_position);

-- Wake projection workers and the relay at commit time (delivered only if the append commits).
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fleet_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- Checkpoints of every log reader (projections and the NATS relay). Updated in the same
-- transaction as the read model they feed.
CREATE TABLE projection_checkpoints (
    name            TEXT PRIMARY KEY,
    transaction_id  BIGINT      NOT NULL DEFAULT 0,
    global_position BIGINT      NOT NULL DEFAULT 0,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT
);
