-- Readers of some categories (projections), as functions so the planner setting below applies
-- to them alone. Each reads one ordered scan of events_category_idx per category and merges
-- them, so a batch costs its own size. Bitmap scans are off inside: when a category has grown
-- since the last ANALYZE the planner expects a few hundred rows and, with bitmap scans, fetches
-- and sorts every remaining event of the category for each batch (a rebuild then ran at half
-- speed, measured in fleetbench).

-- The reader that never skips (events/sql/read_all.sql, per category).
CREATE FUNCTION read_categories(after_xid xid8, after_position BIGINT, max_count BIGINT, wanted TEXT[])
RETURNS SETOF events
LANGUAGE sql STABLE
SET enable_bitmapscan = off
AS $$
    SELECT e.*
    FROM unnest(wanted) AS w(category)
    CROSS JOIN LATERAL (
        SELECT *
        FROM events
        WHERE events.category = w.category
          AND events.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          AND (events.transaction_id, events.global_position) > (after_xid, after_position)
        ORDER BY events.transaction_id, events.global_position
        LIMIT max_count
    ) AS e
    ORDER BY e.transaction_id, e.global_position
    LIMIT max_count
$$;

-- For rebuilds of inline projections only: the rebuild holds the read model's tables, so every
-- transaction that could add to them has either committed (and is visible here) or is waiting.
CREATE FUNCTION read_categories_visible(after_xid xid8, after_position BIGINT, max_count BIGINT, wanted TEXT[])
RETURNS SETOF events
LANGUAGE sql STABLE
SET enable_bitmapscan = off
AS $$
    SELECT e.*
    FROM unnest(wanted) AS w(category)
    CROSS JOIN LATERAL (
        SELECT *
        FROM events
        WHERE events.category = w.category
          AND (events.transaction_id, events.global_position) > (after_xid, after_position)
        ORDER BY events.transaction_id, events.global_position
        LIMIT max_count
    ) AS e
    ORDER BY e.transaction_id, e.global_position
    LIMIT max_count
$$;
