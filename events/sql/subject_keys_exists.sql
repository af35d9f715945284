SELECT EXISTS (SELECT 1 FROM subject_keys WHERE subject = $1 AND wrapped_key IS NOT NULL)
