-- A session's row holds its bound profile package from getBoundProfilePackage to the install
-- result (migration 008). PostgreSQL tries to compress any row longer than about 2 KB, and that row
-- usually is: but the package is SCP03t ciphertext (docs/protocol.md#scp03t-protection-of-the-bpp),
-- which does not compress, so the attempt was wasted work in every download (docs/state-machine.md,
-- "What a download writes").
-- - Rows up to a page stay as they are (toast_tuple_target: the length from which PostgreSQL
--   compresses or moves values out of the row).
-- - A package too large for that is moved out of the row as it is, never compressed (EXTERNAL).
ALTER TABLE rsp_sessions SET (toast_tuple_target = 8160);
ALTER TABLE rsp_sessions ALTER COLUMN bound_profile_package SET STORAGE EXTERNAL;
