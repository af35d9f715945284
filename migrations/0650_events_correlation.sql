-- `fleetstream events trace <correlation id>` finds one request's or flow's events without
-- scanning the log.
CREATE INDEX events_correlation_idx ON events ((metadata->>'correlation_id'));
