-- The SM-DS event deleter (src/smds/deletions.ts) sleeps until told, like the outbox worker
-- (migration 009): every statement that queues deletions sends a NOTIFY on channel
-- 'smds_deletions', delivered when its transaction commits, and the deleter LISTENs for it. Before,
-- it polled the table every 500 ms, idle or not.
CREATE FUNCTION smds_deletions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('smds_deletions', '');
  RETURN NULL;
END;
$$;

CREATE TRIGGER smds_deletions_notify AFTER INSERT ON smds_deletions FOR EACH STATEMENT EXECUTE FUNCTION smds_deletions_notify();
