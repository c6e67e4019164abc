-- The bound profile package delivered in an RSP session (getBoundProfilePackage), kept with the
-- session so an LPA retrying the call after a network error (same transactionId, same euiccOtpk)
-- gets exactly the same bytes again (docs/protocol.md#getboundprofilepackage). It lives and dies
-- with the session row: the PIR, cancelSession, cancelOrder and expiry delete the row, and the
-- package with it.
ALTER TABLE rsp_sessions ADD COLUMN bound_profile_package bytea;
