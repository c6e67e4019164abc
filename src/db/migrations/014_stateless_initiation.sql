-- initiateAuthentication writes nothing (docs/state-machine.md, "Sessions opened without a write"):
-- the transactionId it hands out carries the session's opening (when, which CI) under a tag, and the
-- serverChallenge is derived from it, both with a key every instance reads from server_secrets. A
-- session's row is first written by authenticateClient; a session that ends keeps its row, state
-- 'ended', until it expires, so its transactionId cannot be used a second time.
--
--   server_secrets.name    what the secret is for ('rsp-transaction-ids')
--   server_secrets.secret  32 random bytes, written once by the first instance that needs them

CREATE TABLE server_secrets (
  name text PRIMARY KEY,
  secret bytea NOT NULL
);

-- Sessions opened by an earlier version, never authenticated, cannot be continued: their
-- transactionIds carry no tag.
DELETE FROM rsp_sessions WHERE state = 'initiated';
ALTER TABLE rsp_sessions DROP CONSTRAINT rsp_sessions_state_check;
ALTER TABLE rsp_sessions ADD CONSTRAINT rsp_sessions_state_check CHECK (state IN ('authenticated', 'bound', 'ended'));
-- The eUICC's challenge is signed by the server in initiateAuthentication and not needed after it.
ALTER TABLE rsp_sessions ALTER COLUMN euicc_challenge DROP NOT NULL;
