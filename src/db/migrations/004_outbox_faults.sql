-- Callbacks are delivered strictly in id order per ICCID: the worker needs the ICCID of each row.
ALTER TABLE outbox ADD COLUMN iccid text;
CREATE INDEX outbox_iccid_pending ON outbox (iccid, id) WHERE delivered_at IS NULL;

-- How often a fault fired, for the admin listing.
ALTER TABLE fault_injections ADD COLUMN fired integer NOT NULL DEFAULT 0;
ALTER TABLE fault_injections ADD COLUMN last_fired_at timestamptz;
