-- Destroys the live key of each subject (crypto-shredding); the row stays as the record that
-- it happened. Returns the subjects whose key was destroyed now.
UPDATE subject_keys
SET wrapped_key = NULL,
    shredded_at = now()
WHERE subject = ANY ($1)
  AND wrapped_key IS NOT NULL
RETURNING subject
