-- One round trip for the whole batch; transaction_id defaults to pg_current_xact_id().
INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[])
RETURNING global_position, transaction_id::text::bigint AS transaction_id, stream_id, stream_version,
          event_id, event_type, schema_version, data, metadata, recorded_at
