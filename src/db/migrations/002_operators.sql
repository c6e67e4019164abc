-- ES2+ callers. Each operator authenticates with an API key (stored as SHA-256) and/or a TLS client
-- certificate (SHA-256 fingerprint of its DER), owns its profiles, and receives
-- handleDownloadProgressInfo callbacks at callback_url.
CREATE TABLE operators (
  id text PRIMARY KEY,                       -- functionRequesterIdentifier
  name text NOT NULL,
  api_key_sha256 bytea UNIQUE,
  client_cert_sha256 text UNIQUE,
  callback_url text,
  cc_max_attempts integer NOT NULL DEFAULT 3 CHECK (cc_max_attempts > 0),
  max_download_attempts integer NOT NULL DEFAULT 5 CHECK (max_download_attempts > 0),
  order_ttl_seconds integer CHECK (order_ttl_seconds > 0),
  created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE profiles ADD COLUMN operator_id text REFERENCES operators (id);
ALTER TABLE profiles ADD COLUMN smds_address text;
CREATE INDEX profiles_operator_type_state ON profiles (operator_id, profile_type, state);

-- The outbox: callbacks to operators, written in the same transaction as the state change they
-- report, delivered at least once by whichever server instance claims them.
CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  operator_id text NOT NULL REFERENCES operators (id),
  url text NOT NULL,
  kind text NOT NULL,                        -- e.g. handleDownloadProgressInfo
  payload jsonb NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Fault injection: make the next ES9+ call(s) of an order (by ICCID or MatchingID) or of an eUICC
-- (by EID) fail with a chosen status, be delayed, or have its connection dropped.
CREATE TABLE fault_injections (
  id bigserial PRIMARY KEY,
  iccid text,
  matching_id text,
  eid text,
  function_name text,                        -- ES9+ function, or NULL for any
  mode text NOT NULL CHECK (mode IN ('fail', 'delay', 'drop')),
  subject_code text,
  reason_code text,
  message text,
  delay_ms integer,
  remaining integer NOT NULL DEFAULT 1 CHECK (remaining >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (iccid IS NOT NULL OR matching_id IS NOT NULL OR eid IS NOT NULL),
  CHECK (mode <> 'fail' OR (subject_code IS NOT NULL AND reason_code IS NOT NULL))
);
CREATE INDEX fault_injections_targets ON fault_injections (iccid, matching_id, eid) WHERE remaining > 0;
