-- Several commands' loads in one statement (fleetstream_events::group_load): for each
-- requested stream `i`, its events after version `after[i]`, in version order, tagged with `i`.
-- One index range of events_stream_version_key per stream.
SELECT s.i::int AS request, e.stream_version, e.event_type, e.schema_version, e.data
FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS s(stream_id, after, i)
JOIN events e ON e.stream_id = s.stream_id AND e.stream_version > s.after
ORDER BY s.i, e.stream_version
