-- A sync log changes nothing a client pulls; only the stream version moves.
UPDATE recording_sessions SET stream_version = $2 WHERE session_id = $1
