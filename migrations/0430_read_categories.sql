-- The reader of some categories (projections), as a function so the planner setting below
-- applies to it alone. It reads one ordered scan of events_category_idx per category and merges
-- them, so a batch costs its own size. Bitmap scans are off inside: when a category has grown
-- since the last ANALYZE the planner expects a few hundred rows and, with bitmap scans, fetches
-- and sorts every remaining event of the category for each batch (a rebuild then ran at half
-- speed, measured in fleetbench).
--
-- Events of transactions from `before_xid` on are left out: the never-skipping reader passes
-- `pg_snapshot_xmin` (events/sql/read_categories.sql), a rebuild of an inline projection
-- `pg_snapshot_xmax`, i.e. everything its snapshot sees (projections/sql/read_all_visible.sql).
CREATE FUNCTION read_categories(
    after_xid      xid8,
    after_position BIGINT,
    max_count      BIGINT,
    wanted         TEXT[],
    before_xid     xid8
) RETURNS SETOF events
LANGUAGE sql STABLE
SET enable_bitmapscan = off
AS $$
    SELECT e.*
    FROM unnest(wanted) AS w(category)
    CROSS JOIN LATERAL (
        SELECT *
        FROM events
        WHERE events.category = w.category
          AND events.transaction_id < before_xid
          AND (events.transaction_id, events.global_position) > (after_xid, after_position)
        ORDER BY events.transaction_id, events.global_position
        LIMIT max_count
    ) AS e
    ORDER BY e.transaction_id, e.global_position
    LIMIT max_count
$$;
