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
-- A retry of a committed append finds its stream's first event id stored; only then are the
-- others counted. An id stored further into a stream whose first id is new (a client bug, not
-- a retry) fails the plain insert on `events_event_id_key`, which the caller reports as a
-- partial duplicate. The common path thus costs two index probes per stream and the insert,
-- with no `ON CONFLICT` (speculative insertion costs ~30% of a 100-event insert).
-- Each statement of a plpgsql function takes a fresh snapshot, so the version read after the
-- lock sees every append that held the lock before us.
-- Returns one row: the ids, positions and versions of the inserted events (aligned arrays)
-- and their transaction id (NULL when nothing was written) and time; the caller has the rest.
-- One row of arrays rather than a row per event: the reply is most of an append's cost.
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
BEGIN
    PERFORM pg_advisory_xact_lock(k)
    FROM (SELECT DISTINCT hashtextextended(s, 0) AS k FROM unnest(streams) AS s ORDER BY k) AS keys;

    FOR i IN 1 .. coalesce(array_length(streams, 1), 0) LOOP
        SELECT coalesce(max(e.stream_version), 0) INTO actual
        FROM events e WHERE e.stream_id = streams[i];
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
        END IF;
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
