-- Crypto-shredding (ADR 0009): one data key per data subject (an account, a patient, a phone
-- number), kept outside the log and wrapped by the master key (FLEET_MASTER_KEY). Destroying a
-- key (wrapped_key := NULL) erases its subject's personal fields from every event for good.
CREATE TABLE subject_keys (
    key_id      UUID PRIMARY KEY,
    subject     TEXT        NOT NULL,
    wrapped_key BYTEA,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    shredded_at TIMESTAMPTZ,
    CHECK ((wrapped_key IS NULL) = (shredded_at IS NOT NULL))
);
-- One live key per subject; destroyed ones stay as the record of the erasure.
CREATE UNIQUE INDEX subject_keys_live_subject_key ON subject_keys (subject) WHERE wrapped_key IS NOT NULL;

-- A destroyed key stays destroyed: no statement, API or tool can put key material back.
CREATE FUNCTION subject_keys_stay_destroyed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.wrapped_key IS NULL AND NEW.wrapped_key IS NOT NULL THEN
        RAISE EXCEPTION 'data key % of % was destroyed and cannot be restored', OLD.key_id, OLD.subject
            USING ERRCODE = 'FS410';
    END IF;
    IF OLD.wrapped_key IS NOT NULL AND NEW.wrapped_key IS NOT NULL AND NEW.wrapped_key <> OLD.wrapped_key THEN
        RAISE EXCEPTION 'data key % cannot be replaced', OLD.key_id USING ERRCODE = 'FS410';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER subject_keys_stay_destroyed
    BEFORE UPDATE ON subject_keys
    FOR EACH ROW EXECUTE FUNCTION subject_keys_stay_destroyed();

-- Erased accounts keep no e-mail: the column holds NULL once the account is withdrawn or
-- deleted (uniqueness applies to the addresses still held).
ALTER TABLE accounts ALTER COLUMN email DROP NOT NULL;

-- `fleetstream privacy migrate`: the one-time sealing of events written before this change.
CREATE TABLE privacy_migration (
    id            BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    last_position BIGINT      NOT NULL DEFAULT 0,
    sealed_events BIGINT      NOT NULL DEFAULT 0,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ
);

-- The keyed hash of the e-mail (from the events): it stays when an erasure empties `email`, so
-- a withdrawn address still signs in as "deleted" and stays taken, as before erasure existed.
ALTER TABLE accounts ADD COLUMN email_key TEXT;
CREATE UNIQUE INDEX accounts_email_digest_key ON accounts (email_key);
