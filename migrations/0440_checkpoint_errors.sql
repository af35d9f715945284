-- When a log reader's current failure began (NULL while it is healthy): health reports a reader
-- that keeps failing as degraded, with its error, instead of only a growing lag.
ALTER TABLE projection_checkpoints ADD COLUMN failing_since TIMESTAMPTZ;
ALTER TABLE projection_checkpoints ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
