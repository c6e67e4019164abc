-- The QA console's callback catcher (src/console/catcher.ts, docs/console.md): every request an
-- operator callback URL of the form <server>/catcher/<bin> receives, kept in the database so that any
-- server instance can list what any other one caught. The catcher keeps the newest 1000 requests of
-- a bin and the newest 10 000 overall; nothing on the ES9+ path reads or writes this table.
CREATE TABLE caught_requests (
  id bigserial PRIMARY KEY,
  bin text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  method text NOT NULL,
  path text NOT NULL,
  headers jsonb NOT NULL,
  body bytea NOT NULL,
  answered integer NOT NULL
);
CREATE INDEX caught_requests_bin ON caught_requests (bin, id);
