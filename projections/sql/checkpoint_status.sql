SELECT c.name, c.transaction_id, c.global_position, c.updated_at, c.last_error, c.failing_since,
       c.failures,
       (SELECT count(*) FROM events e
         WHERE (e.transaction_id, e.global_position) > (c.transaction_id::text::xid8, c.global_position)
           AND ($2::text[] IS NULL OR e.category = ANY($2::text[]))) AS lag_events,
       (SELECT min(e.recorded_at) FROM events e
         WHERE (e.transaction_id, e.global_position) > (c.transaction_id::text::xid8, c.global_position)
           AND ($2::text[] IS NULL OR e.category = ANY($2::text[]))) AS oldest_pending_at,
       (SELECT count(*) FROM projection_skipped s WHERE s.projection = c.name) AS skipped_events,
       (SELECT min(s.global_position) FROM projection_skipped s WHERE s.projection = c.name) AS first_skipped
FROM projection_checkpoints c WHERE c.name = $1
