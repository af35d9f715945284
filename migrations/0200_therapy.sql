-- Devices, patients and treatment read models (inline projections `devices`, `patients`,
-- `treatment_logs`), and the id sequences their commands take ids from.
CREATE SEQUENCE device_id_seq;
CREATE SEQUENCE patient_id_seq;

CREATE TABLE devices (
    id               BIGINT PRIMARY KEY,
    public_id        UUID        NOT NULL,
    unique_id        TEXT        NOT NULL,
    serial_code      TEXT,
    mac_id           TEXT,
    name             TEXT        NOT NULL,
    device_alias     TEXT,
    device_type      TEXT,
    project_id       BIGINT,
    hardware_id      BIGINT,
    now_firmware_id  BIGINT,
    firmware_version TEXT,
    ip_address       TEXT,
    group_id         BIGINT,
    owner_id         BIGINT,
    description      TEXT,
    status           TEXT        NOT NULL,
    connectivity     TEXT        NOT NULL DEFAULT 'offline',
    last_seen_at     TIMESTAMPTZ,
    real_user_id     BIGINT,
    last_log_file_id BIGINT      NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ
);
-- Checked inside the registering transaction: of two concurrent registrations, one commits.
CREATE UNIQUE INDEX devices_unique_id_key ON devices (unique_id);
CREATE UNIQUE INDEX devices_serial_code_key ON devices (upper(serial_code)) WHERE serial_code IS NOT NULL;
CREATE UNIQUE INDEX devices_public_id_key ON devices (public_id);
CREATE INDEX devices_real_user_idx ON devices (real_user_id) WHERE real_user_id IS NOT NULL;
CREATE INDEX devices_owner_idx ON devices (owner_id);

CREATE TABLE patients (
    id           BIGINT PRIMARY KEY,
    root_user_id BIGINT      NOT NULL,
    first_name   TEXT        NOT NULL,
    last_name    TEXT        NOT NULL,
    birthdate    TEXT        NOT NULL,
    gender       TEXT        NOT NULL,
    device_id    BIGINT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX patients_root_user_idx ON patients (root_user_id);

CREATE TABLE treatment_logs (
    device_id      BIGINT      NOT NULL,
    record_no      BIGINT      NOT NULL,
    real_user_id   BIGINT      NOT NULL,
    treatment_date TIMESTAMP   NOT NULL,
    last_intensity BIGINT      NOT NULL,
    treatment_time BIGINT      NOT NULL,
    movement       BIGINT      NOT NULL DEFAULT 0,
    finish_flag    BIGINT,
    log_file_id    BIGINT,
    log_data       TEXT,
    is_temp        BOOLEAN     NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_id, record_no)
);
CREATE INDEX treatment_logs_patient_day_idx ON treatment_logs (real_user_id, treatment_date);

CREATE TABLE movement_samples (
    device_id    BIGINT NOT NULL,
    real_user_id BIGINT NOT NULL,
    ts           BIGINT NOT NULL,
    val          BIGINT NOT NULL,
    PRIMARY KEY (device_id, ts)
);
CREATE INDEX movement_samples_patient_idx ON movement_samples (real_user_id, ts);
