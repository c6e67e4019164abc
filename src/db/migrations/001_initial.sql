-- Profile types: what the metadata of a profile of this type says.
CREATE TABLE profile_types (
  name text PRIMARY KEY,
  service_provider_name text NOT NULL,
  profile_name text NOT NULL,
  profile_class smallint NOT NULL DEFAULT 2 CHECK (profile_class IN (0, 1, 2)),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per profile (ICCID) with its current download order, as ES2+ addresses orders by ICCID.
CREATE TABLE profiles (
  iccid text PRIMARY KEY CHECK (iccid ~ '^[0-9]{19,20}$'),
  profile_type text NOT NULL REFERENCES profile_types (name),
  imsi text NOT NULL CHECK (imsi ~ '^[0-9]{6,15}$'),
  ki bytea NOT NULL CHECK (length(ki) = 16),
  opc bytea NOT NULL CHECK (length(opc) = 16),
  state text NOT NULL CHECK (state IN ('Available', 'Allocated', 'Linked', 'Confirmed', 'Released',
                                        'Downloaded', 'Installed', 'Error', 'Unavailable')),
  eid text CHECK (eid ~ '^[0-9]{32}$'),
  matching_id text UNIQUE,
  cc_digest bytea,
  cc_attempts integer NOT NULL DEFAULT 0,
  cc_max_attempts integer NOT NULL DEFAULT 3,
  download_attempts integer NOT NULL DEFAULT 0,
  max_download_attempts integer NOT NULL DEFAULT 5,
  expires_at timestamptz,
  device_state text CHECK (device_state IN ('Enabled', 'Disabled', 'Deleted')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX profiles_eid_state ON profiles (eid, state);
CREATE INDEX profiles_type_state ON profiles (profile_type, state);

-- Order history: every state change and every protocol event against a profile.
CREATE TABLE profile_events (
  id bigserial PRIMARY KEY,
  iccid text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  event text NOT NULL,
  detail jsonb
);
CREATE INDEX profile_events_iccid ON profile_events (iccid, id);

-- ES9+ RSP sessions, keyed by transactionId (upper-case hex). Any server process can continue one.
CREATE TABLE rsp_sessions (
  transaction_id text PRIMARY KEY,
  state text NOT NULL CHECK (state IN ('initiated', 'authenticated', 'bound')),
  ci_ski text NOT NULL,
  server_address text NOT NULL,
  euicc_challenge bytea NOT NULL,
  server_challenge bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  eid text,
  iccid text,
  euicc_certificate bytea,
  smdp_signature2 bytea,
  profile_metadata bytea,
  cc_required boolean,
  euicc_otpk bytea
);
CREATE INDEX rsp_sessions_expiry ON rsp_sessions (expires_at);

-- Every notification received over ES9+ handleNotification, verified or not.
CREATE TABLE notifications (
  id bigserial PRIMARY KEY,
  received_at timestamptz NOT NULL DEFAULT now(),
  kind text NOT NULL,
  verified boolean NOT NULL,
  eid text,
  iccid text,
  transaction_id text,
  seq_number integer,
  outcome text,
  detail jsonb,
  raw bytea NOT NULL
);
CREATE INDEX notifications_iccid ON notifications (iccid, id);

-- The profile type that orders use unless told otherwise.
INSERT INTO profile_types (name, service_provider_name, profile_name, profile_class)
VALUES ('default', 'mock-smdp', 'mock-smdp test profile', 2);
