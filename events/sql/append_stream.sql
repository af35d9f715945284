-- One stream's append as a statement of its own (autocommit), for a writer whose events no
-- inline projection reads: no plpgsql, no advisory lock, one round trip including the commit.
-- The versions follow the expected one; `events_stream_version_key` refuses them when another
-- writer got there first (a concurrent one is waited for, then refused), and
-- `events_event_id_key` refuses a retry. The caller then asks `append_events` for the typed
-- answer. Rows come back in insert order.
INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
SELECT $1, $2 + t.n, t.id, t.type, t.schema_version, t.data, t.metadata
FROM unnest($3::uuid[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[])
     WITH ORDINALITY AS t(id, type, schema_version, data, metadata, n)
ORDER BY t.n
RETURNING global_position, stream_version, event_id, transaction_id::text::bigint AS transaction_id,
          recorded_at
