-- The indexes that only the retention prune reads (src/db/retention.ts) become BRIN indexes. Each
-- is on a time that grows with insertion order (a history event's time, a notification's arrival,
-- a session's expiry), which is what BRIN summarises well: the prune's "older than" still finds
-- its rows by page range. A B-tree on such a column took a new entry with every row, i.e. several
-- per download (three history events, a notification, a session and its moved versions); a BRIN
-- index is not touched by rows added past its last summarised range, which VACUUM summarises
-- later. docs/state-machine.md, "What a download writes".
DROP INDEX profile_events_at;
CREATE INDEX profile_events_at ON profile_events USING brin (at);

DROP INDEX notifications_received;
CREATE INDEX notifications_received ON notifications USING brin (received_at);

DROP INDEX rsp_sessions_expiry;
CREATE INDEX rsp_sessions_expiry ON rsp_sessions USING brin (expires_at);
