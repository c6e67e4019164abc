-- A download changes a profile three times (authenticated, downloaded, installed). With `state` in
-- three of the table's indexes, each change added an entry to every index of the table, because
-- PostgreSQL updates a row in place of its page (a HOT update, no new index entries) only when no
-- indexed column changes, the conditions of partial indexes included. docs/state-machine.md,
-- "What a download writes".
--
-- Now no index holds `state`:
-- - the pool of Available profiles is a partial index on `available`, a stored column computed from
--   `state`: it is false for every state of a download, so the download's changes leave it alone;
-- - the EID's profiles are found by `eid` alone (an EID has a few), the operator's by operator and
--   type.
-- And pages keep room for the new versions (fillfactor), as HOT needs the new version on the same
-- page.
ALTER TABLE profiles ADD COLUMN available boolean GENERATED ALWAYS AS (state = 'Available') STORED;

DROP INDEX profiles_eid_state;
DROP INDEX profiles_type_state;
DROP INDEX profiles_operator_type_state;
CREATE INDEX profiles_eid ON profiles (eid);
CREATE INDEX profiles_operator_type ON profiles (operator_id, profile_type);
CREATE INDEX profiles_available ON profiles (operator_id, profile_type, created_at, iccid) WHERE available;

ALTER TABLE profiles SET (fillfactor = 70);
