-- A reader's failed batch: its checkpoint stays where it is; the error, when the failure began
-- and how many batches failed in a row are kept until a batch succeeds.
INSERT INTO projection_checkpoints (name, last_error, failing_since, failures)
VALUES ($1, $2, now(), 1)
ON CONFLICT (name) DO UPDATE
SET last_error = EXCLUDED.last_error,
    failing_since = coalesce(projection_checkpoints.failing_since, now()),
    failures = projection_checkpoints.failures + 1
