-- An inline projection is current by construction: its position is the newest committed event
-- of its categories (one backward index step per category).
SELECT coalesce(max(last.global_position), 0) AS global_position, max(last.recorded_at) AS updated_at
FROM unnest($1::text[]) AS c(category)
CROSS JOIN LATERAL (
    SELECT e.global_position, e.recorded_at FROM events e
    WHERE e.category = c.category
    ORDER BY e.transaction_id DESC, e.global_position DESC
    LIMIT 1
) AS last
