-- Event payloads (a push's samples can be several hundred kB) are TOASTed; lz4 compresses
-- several times faster than the default pglz at a similar ratio, and the append waits on it.
ALTER TABLE events ALTER COLUMN data SET COMPRESSION lz4;
ALTER TABLE events ALTER COLUMN metadata SET COMPRESSION lz4;
