-- Group commit of single-stream commands (fleetstream_events::group): many commands' appends in
-- one statement, so they share one transaction and one commit. Each command is its own
-- subtransaction (an EXCEPTION block): a version or id another writer took is that command's
-- refusal alone (`appended[i]` false, its positions NULL), and its neighbours are written.
-- Streams are given with the version each command loaded (`bases`, 0 = new) and how many of the
-- event arrays' entries are its events (contiguous, in order). No locks: the
-- (stream_id, stream_version) key decides a race, as in events/sql/append_stream.sql; a
-- refused command loads again and decides again. Rows carry the top transaction's id
-- (pg_current_xact_id() inside a subtransaction), so log readers' never-skip rule holds.
CREATE FUNCTION append_group(
    streams         TEXT[],
    bases           BIGINT[],
    stream_counts   INT[],
    event_ids       UUID[],
    event_types     TEXT[],
    schema_versions INT[],
    payloads        JSONB[],
    metadatas       JSONB[]
) RETURNS TABLE (
    appended           BOOLEAN[],
    appended_positions BIGINT[],
    appended_xid       BIGINT,
    appended_at        TIMESTAMPTZ
) LANGUAGE plpgsql AS $$
DECLARE
    first_event INT := 1;
    last_event  INT;
    got         BIGINT[];
BEGIN
    appended := '{}';
    appended_positions := '{}';
    FOR i IN 1 .. coalesce(array_length(streams, 1), 0) LOOP
        last_event := first_event + stream_counts[i] - 1;
        BEGIN
            WITH inserted AS (
                INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
                SELECT streams[i], bases[i] + t.k, t.id, t.type, t.schema_version, t.data, t.metadata
                FROM unnest(event_ids[first_event : last_event], event_types[first_event : last_event],
                            schema_versions[first_event : last_event], payloads[first_event : last_event],
                            metadatas[first_event : last_event])
                     WITH ORDINALITY AS t(id, type, schema_version, data, metadata, k)
                ORDER BY t.k
                RETURNING global_position
            )
            SELECT array_agg(inserted.global_position) INTO got FROM inserted;
            appended := appended || true;
            appended_positions := appended_positions || got;
        EXCEPTION WHEN unique_violation THEN
            appended := appended || false;
            appended_positions := appended_positions || array_fill(NULL::BIGINT, ARRAY[stream_counts[i]]);
        END;
        first_event := last_event + 1;
    END LOOP;
    appended_xid := pg_current_xact_id_if_assigned()::text::bigint;
    appended_at := now();
    RETURN NEXT;
END $$;
