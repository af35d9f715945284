-- Readers are woken after commit by the appender (fleetstream_events::notify), not by a
-- trigger inside the append: a NOTIFY in the append transaction serialised every append's
-- commit on Postgres' notification lock, through the WAL flush, and halved group commit.
-- `events_notify()` stays for tools that want the old behaviour on a table of their own.
DROP TRIGGER events_notify ON events;
