-- The whole append in one round trip (Message DB's write_message, for several streams at once).
--
-- Streams are given in append order with, per stream, the expected version (-1 any, 0 no
-- stream, n exact) and how many of the event arrays' entries are its events (they are
-- contiguous). Under per-stream locks taken in hash order (two multi-stream appends can never
-- deadlock), each stream is either
--   * appended at the versions after its current one, when the expectation holds;
--   * skipped: all its event ids are stored already — an idempotent retry of a committed append;
--   * refused: some of its ids are stored (SQLSTATE FS422) or its version is not the expected
--     one (SQLSTATE FS409, DETAIL = stream id, HINT = actual version).
-- Stored ids are looked up only where they can matter: when an expectation fails (a retry of
-- an append that committed sees its own events as the conflict), and when the insert, which
-- skips ids already stored, wrote fewer rows than planned. The common path costs one version
-- lookup per stream and the insert.
-- Each statement of a plpgsql function takes a fresh snapshot, so the version read after the
-- lock sees every append that held the lock before us.
-- Returns what the log assigned to each inserted event; the caller still has the rest.
CREATE FUNCTION append_events(
    streams         TEXT[],
    expected        BIGINT[],
    stream_counts   INT[],
    event_ids       UUID[],
    event_types     TEXT[],
    schema_versions INT[],
    payloads        JSONB[],
    metadatas       JSONB[]
) RETURNS TABLE (
    event_id        UUID,
    global_position BIGINT,
    transaction_id  BIGINT,
    stream_version  BIGINT,
    recorded_at     TIMESTAMPTZ
) LANGUAGE plpgsql AS $$
DECLARE
    first_event INT := 1;
    stored      INT;
    actual      BIGINT;
    planned     INT := 0;
    written     INT;
    -- Per event: the stream it belongs to and its version; NULL version = not written.
    owners      INT[] := '{}';
    versions    BIGINT[] := '{}';
BEGIN
    PERFORM pg_advisory_xact_lock(k)
    FROM (SELECT DISTINCT hashtextextended(s, 0) AS k FROM unnest(streams) AS s ORDER BY k) AS keys;

    FOR i IN 1 .. coalesce(array_length(streams, 1), 0) LOOP
        SELECT coalesce(max(e.stream_version), 0) INTO actual
        FROM events e WHERE e.stream_id = streams[i];
        owners := owners || array_fill(i, ARRAY[stream_counts[i]]);
        IF expected[i] < 0 OR expected[i] = actual THEN
            versions := versions || ARRAY(SELECT generate_series(actual + 1, actual + stream_counts[i]));
            planned := planned + stream_counts[i];
        ELSE
            SELECT count(*) INTO stored
            FROM events e
            WHERE e.event_id = ANY (event_ids[first_event : first_event + stream_counts[i] - 1]);
            IF stored = 0 THEN
                RAISE EXCEPTION 'stream % is at version %, expected %', streams[i], actual, expected[i]
                    USING ERRCODE = 'FS409', DETAIL = streams[i], HINT = actual::text;
            ELSIF stored < stream_counts[i] THEN
                RAISE EXCEPTION 'event ids of stream % are partly stored already', streams[i]
                    USING ERRCODE = 'FS422', DETAIL = streams[i];
            END IF;
            versions := versions || array_fill(NULL::BIGINT, ARRAY[stream_counts[i]]);
        END IF;
        first_event := first_event + stream_counts[i];
    END LOOP;

    RETURN QUERY
    INSERT INTO events AS e (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
    SELECT streams[t.owner], t.version, t.id, t.type, t.schema_version, t.data, t.metadata
    FROM unnest(owners, versions, event_ids, event_types, schema_versions, payloads, metadatas)
         WITH ORDINALITY AS t(owner, version, id, type, schema_version, data, metadata, n)
    WHERE t.version IS NOT NULL
    ORDER BY t.n
    ON CONFLICT ON CONSTRAINT events_event_id_key DO NOTHING
    RETURNING e.event_id, e.global_position, e.transaction_id::text::bigint, e.stream_version,
              e.recorded_at;

    GET DIAGNOSTICS written = ROW_COUNT;
    IF written < planned THEN
        -- Some ids were stored already: fine for a stream none of whose events we wrote (a
        -- retry), refused for a stream we wrote only part of.
        first_event := 1;
        FOR i IN 1 .. coalesce(array_length(streams, 1), 0) LOOP
            IF stream_counts[i] > 0 AND versions[first_event] IS NOT NULL THEN
                SELECT count(*) INTO stored
                FROM events e
                WHERE e.event_id = ANY (event_ids[first_event : first_event + stream_counts[i] - 1])
                  AND e.transaction_id = pg_current_xact_id();
                IF stored > 0 AND stored < stream_counts[i] THEN
                    RAISE EXCEPTION 'event ids of stream % are partly stored already', streams[i]
                        USING ERRCODE = 'FS422', DETAIL = streams[i];
                END IF;
            END IF;
            first_event := first_event + stream_counts[i];
        END LOOP;
    END IF;
END $$;
