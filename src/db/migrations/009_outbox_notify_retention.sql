-- The outbox worker (src/outbox/worker.ts) sleeps until told: every statement that adds outbox rows
-- sends a NOTIFY on channel 'outbox', delivered when its transaction commits (none on rollback), so
-- the transactions that queue callbacks make no extra round trip. Statement-level: one
-- notification per INSERT, however many rows, and PostgreSQL folds identical notifications of
-- one transaction into one.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('outbox', '');
  RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Retention (src/db/retention.ts, RETENTION_DAYS): the prune finds old rows by time.
CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX notifications_received ON notifications (received_at);
CREATE INDEX profile_events_at ON profile_events (at);
