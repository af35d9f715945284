-- Data keys by id, for opening sealed fields; a destroyed key comes back with no key material.
SELECT subject, key_id, wrapped_key
FROM subject_keys
WHERE key_id = ANY ($1)
