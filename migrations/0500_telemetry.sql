-- Telemetry, alerting and analytics: id sequences taken at command time, and the async read
-- models (projections `measurements`, `device_status`, `alert_rules`, `alerts`,
-- `analysis_results`).
CREATE SEQUENCE measurement_id_seq;
CREATE SEQUENCE alert_rule_id_seq;
CREATE SEQUENCE alert_id_seq;
CREATE SEQUENCE analysis_result_id_seq;

-- Raw samples, one partition per month (created on demand by the projection, see
-- projections/src/read_models/measurements.rs). The primary key must hold the partition key.
CREATE TABLE measurements (
    id        BIGINT         NOT NULL,
    device_id BIGINT         NOT NULL,
    metric    TEXT           NOT NULL,
    value     NUMERIC(20,10) NOT NULL,
    unit      TEXT,
    ts        TIMESTAMPTZ    NOT NULL,
    PRIMARY KEY (id, ts)
) PARTITION BY RANGE (ts);
-- aggregated-data (newest 100 per device) and analytics over a window of one device.
CREATE INDEX measurements_device_ts_idx ON measurements (device_id, ts DESC, id DESC);

-- Roll-ups ("aggregated stats") per device, metric and bucket. `sum_sq` serves `std`.
CREATE TABLE telemetry_rollup_1m (
    device_id BIGINT      NOT NULL,
    metric    TEXT        NOT NULL,
    bucket    TIMESTAMPTZ NOT NULL,
    count     BIGINT      NOT NULL,
    sum       NUMERIC     NOT NULL,
    sum_sq    NUMERIC     NOT NULL,
    min       NUMERIC(20,10) NOT NULL,
    max       NUMERIC(20,10) NOT NULL,
    PRIMARY KEY (device_id, bucket, metric)
);
CREATE TABLE telemetry_rollup_1h (LIKE telemetry_rollup_1m INCLUDING ALL);

-- Connectivity and last_seen_at per device (the `devices` views read them from here).
CREATE TABLE device_presence (
    device_id     BIGINT PRIMARY KEY,
    connectivity  TEXT        NOT NULL DEFAULT 'offline',
    last_seen_at  TIMESTAMPTZ
);

-- Every status report, for `/analytics/status` and `uptime_ratio`.
CREATE TABLE device_status_history (
    position    BIGINT PRIMARY KEY,
    device_id   BIGINT      NOT NULL,
    status      TEXT        NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX device_status_history_device_idx ON device_status_history (device_id, reported_at);

CREATE TABLE alert_rules (
    id              BIGINT PRIMARY KEY,
    name            TEXT           NOT NULL,
    description     TEXT,
    metric          TEXT           NOT NULL,
    condition       TEXT           NOT NULL,
    threshold       NUMERIC(20,10) NOT NULL,
    severity        TEXT           NOT NULL,
    device_group_id BIGINT,
    is_active       BOOLEAN        NOT NULL,
    created_at      TIMESTAMPTZ    NOT NULL,
    updated_at      TIMESTAMPTZ    NOT NULL
);
CREATE INDEX alert_rules_metric_idx ON alert_rules (metric) WHERE is_active;

CREATE TABLE alerts (
    id              BIGINT PRIMARY KEY,
    rule_id         BIGINT         NOT NULL,
    device_id       BIGINT         NOT NULL,
    severity        TEXT           NOT NULL,
    metric          TEXT           NOT NULL,
    value           NUMERIC(20,10) NOT NULL,
    message         TEXT           NOT NULL,
    is_acknowledged BOOLEAN        NOT NULL DEFAULT FALSE,
    acknowledged_by BIGINT,
    acknowledged_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ    NOT NULL
);
-- The aggregate enforces this; the index only documents and double-checks it.
CREATE UNIQUE INDEX alerts_open_key ON alerts (rule_id, device_id) WHERE NOT is_acknowledged;
CREATE INDEX alerts_open_idx ON alerts (created_at DESC, id DESC) WHERE NOT is_acknowledged;

CREATE TABLE analysis_results (
    id            BIGINT PRIMARY KEY,
    analysis_type TEXT        NOT NULL,
    device_id     BIGINT      NOT NULL,
    device_uid    TEXT        NOT NULL,
    params        JSONB       NOT NULL,
    result        JSONB       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX analysis_results_type_idx ON analysis_results (analysis_type, created_at DESC, id DESC);

-- Creates the monthly partitions of `measurements` that the given timestamps fall in and that
-- do not exist yet (called by the projection once per batch, before its insert).
CREATE FUNCTION ensure_measurement_partitions(stamps TIMESTAMPTZ[]) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    month TIMESTAMP;
    name  TEXT;
BEGIN
    FOR month IN
        SELECT DISTINCT date_trunc('month', s AT TIME ZONE 'UTC') FROM unnest(stamps) AS s
    LOOP
        name := 'measurements_p' || to_char(month, 'YYYYMM');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF measurements FOR VALUES FROM (%L) TO (%L)',
                name,
                (month AT TIME ZONE 'UTC'),
                ((month + interval '1 month') AT TIME ZONE 'UTC'));
        END IF;
    END LOOP;
END $$;
