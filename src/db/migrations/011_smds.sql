-- The built-in SM-DS and the SM-DP+'s use of an SM-DS (docs/smds.md).
--
-- SM-DS side: the event records received over ES12 RegisterEvent, one per EventID, read by ES11 for
-- the EID of an authenticated eUICC; DeleteEvent removes the row.
CREATE TABLE smds_events (
  event_id text PRIMARY KEY,
  eid text NOT NULL,
  rsp_server_address text NOT NULL,
  -- the functionRequesterIdentifier of the SM-DP+ that registered it (only that one may delete it)
  registered_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX smds_events_eid ON smds_events (eid, created_at);

-- The SM-DP+ servers allowed to call ES12 here: the requester identifier and the SHA-256 (hex) of
-- its key (sent as X-API-Key). This server's own SM-DP+ is always allowed (src/smds/es12-auth.ts).
CREATE TABLE smds_clients (
  requester text PRIMARY KEY,
  key_digest text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- SM-DP+ side: DeleteEvent calls still to make (a download completed or an order was cancelled),
-- written in the statement of that change and sent afterwards by src/smds/deleter.ts.
CREATE TABLE smds_deletions (
  id bigserial PRIMARY KEY,
  smds_address text NOT NULL,
  eid text NOT NULL,
  event_id text NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX smds_deletions_due ON smds_deletions (next_attempt_at);

-- SM-DS side: the ES11 sessions (initiateAuthentication opens one, authenticateClient ends it). The
-- transactionIds start with the bytes "SMDS" (src/smds/es11.ts).
CREATE TABLE smds_sessions (
  transaction_id text PRIMARY KEY,
  ci_ski text NOT NULL,
  server_address text NOT NULL,
  euicc_challenge bytea NOT NULL,
  server_challenge bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX smds_sessions_expiry ON smds_sessions (expires_at);
