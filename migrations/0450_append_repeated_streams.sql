-- A stream may appear in several entries of one append (a group commit gathers commands of
-- one device): each entry continues from the version the previous one reached, instead of all
-- of them starting from the stored version (which collided on `events_stream_version_key`).
-- Everything else is as in 0400.
CREATE OR REPLACE FUNCTION append_events(
    streams         TEXT[],
    expected        BIGINT[],
    stream_counts   INT[],
    event_ids       UUID[],
    event_types     TEXT[],
    schema_versions INT[],
    payloads        JSONB[],
    metadatas       JSONB[]
) RETURNS TABLE (
    appended_ids       UUID[],
    appended_positions BIGINT[],
    appended_versions  BIGINT[],
    appended_xid       BIGINT,
    appended_at        TIMESTAMPTZ
) LANGUAGE plpgsql AS $$
DECLARE
    first_event INT := 1;
    stored      INT;
    actual      BIGINT;
    -- Per event: the stream it belongs to and its version; NULL version = not written.
    owners      INT[] := '{}';
    versions    BIGINT[] := '{}';
    -- The version each stream reached so far in this call, by its first entry's index.
    reached     BIGINT[] := '{}';
    earlier     INT;
BEGIN
    PERFORM pg_advisory_xact_lock(k)
    FROM (SELECT DISTINCT hashtextextended(s, 0) AS k FROM unnest(streams) AS s ORDER BY k) AS keys;

    FOR i IN 1 .. coalesce(array_length(streams, 1), 0) LOOP
        earlier := array_position(streams, streams[i]);
        IF earlier < i THEN
            actual := reached[earlier];
        ELSE
            SELECT coalesce(max(e.stream_version), 0) INTO actual
            FROM events e WHERE e.stream_id = streams[i];
        END IF;
        owners := owners || array_fill(i, ARRAY[stream_counts[i]]);
        IF stream_counts[i] > 0
           AND EXISTS (SELECT FROM events e WHERE e.event_id = event_ids[first_event]) THEN
            SELECT count(*) INTO stored
            FROM events e
            WHERE e.event_id = ANY (event_ids[first_event : first_event + stream_counts[i] - 1]);
            IF stored < stream_counts[i] THEN
                RAISE EXCEPTION 'event ids of stream % are partly stored already', streams[i]
                    USING ERRCODE = 'FS422', DETAIL = streams[i];
            END IF;
            versions := versions || array_fill(NULL::BIGINT, ARRAY[stream_counts[i]]);
        ELSIF expected[i] >= 0 AND expected[i] <> actual THEN
            RAISE EXCEPTION 'stream % is at version %, expected %', streams[i], actual, expected[i]
                USING ERRCODE = 'FS409', DETAIL = streams[i], HINT = actual::text;
        ELSE
            versions := versions || ARRAY(SELECT generate_series(actual + 1, actual + stream_counts[i]));
            actual := actual + stream_counts[i];
        END IF;
        reached[coalesce(earlier, i)] := actual;
        first_event := first_event + stream_counts[i];
    END LOOP;

    WITH inserted AS (
        INSERT INTO events AS e (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
        SELECT streams[t.owner], t.version, t.id, t.type, t.schema_version, t.data, t.metadata
        FROM unnest(owners, versions, event_ids, event_types, schema_versions, payloads, metadatas)
             WITH ORDINALITY AS t(owner, version, id, type, schema_version, data, metadata, n)
        WHERE t.version IS NOT NULL
        ORDER BY t.n
        RETURNING e.event_id, e.global_position, e.stream_version
    )
    -- Rows come back in insert order; the three arrays are aligned (no sort needed).
    SELECT coalesce(array_agg(i.event_id), '{}'),
           coalesce(array_agg(i.global_position), '{}'),
           coalesce(array_agg(i.stream_version), '{}')
    INTO appended_ids, appended_positions, appended_versions
    FROM inserted i;
    appended_xid := pg_current_xact_id_if_assigned()::text::bigint;
    appended_at := now(); -- the column default: the transaction's start
    RETURN NEXT;
END $$;
