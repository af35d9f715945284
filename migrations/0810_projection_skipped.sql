-- Events a log reader could not apply after repeated tries and stepped past, so one event
-- never stops the ones after it. Each stays listed (health is `degraded`) until the reader is
-- rebuilt, which replays it again.
CREATE TABLE projection_skipped (
    projection      TEXT        NOT NULL,
    global_position BIGINT      NOT NULL,
    event_id        UUID        NOT NULL,
    event_type      TEXT        NOT NULL,
    error           TEXT        NOT NULL,
    skipped_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, global_position)
);
