-- The checks of profiles and rsp_sessions become domains and a trigger (docs/state-machine.md,
-- "Round trips of one download"). A table's CHECK constraints are all evaluated again on every
-- UPDATE of a row, whatever columns it changes, and their expressions are read and prepared again
-- for every statement: on the ES9+ path that was about an eighth of PostgreSQL's CPU per download
-- (three profile UPDATEs with eight checks each). A domain's check runs only when a value is
-- assigned to the column, and its prepared expression is kept by the connection. The key lengths
-- (bytea) are checked by a trigger on the columns instead: PGlite sends a parameter by its type,
-- and does not know a domain over bytea. The rules are the same as before.

CREATE DOMAIN iccid_text AS text CHECK (VALUE ~ '^[0-9]{19,20}$');
CREATE DOMAIN imsi_text AS text CHECK (VALUE ~ '^[0-9]{6,15}$');
CREATE DOMAIN eid_text AS text CHECK (VALUE ~ '^[0-9]{32}$');
CREATE DOMAIN profile_state AS text CHECK (VALUE IN ('Available', 'Allocated', 'Linked', 'Confirmed', 'Released',
                                                      'Downloaded', 'Installed', 'Error', 'Unavailable'));
CREATE DOMAIN profile_device_state AS text CHECK (VALUE IN ('Enabled', 'Disabled', 'Deleted'));
CREATE DOMAIN rsp_session_state AS text CHECK (VALUE IN ('authenticated', 'bound', 'ended'));

ALTER TABLE profiles
  DROP CONSTRAINT profiles_iccid_check,
  DROP CONSTRAINT profiles_imsi_check,
  DROP CONSTRAINT profiles_ki_check,
  DROP CONSTRAINT profiles_opc_check,
  DROP CONSTRAINT profiles_scp03_keys_check,
  DROP CONSTRAINT profiles_state_check,
  DROP CONSTRAINT profiles_eid_check,
  DROP CONSTRAINT profiles_device_state_check,
  ALTER COLUMN iccid TYPE iccid_text,
  ALTER COLUMN imsi TYPE imsi_text,
  ALTER COLUMN eid TYPE eid_text,
  ALTER COLUMN state TYPE profile_state,
  ALTER COLUMN device_state TYPE profile_device_state;

ALTER TABLE rsp_sessions
  DROP CONSTRAINT rsp_sessions_state_check,
  ALTER COLUMN state TYPE rsp_session_state;

CREATE FUNCTION profiles_key_lengths() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF length(NEW.ki) <> 16 OR length(NEW.opc) <> 16 OR length(NEW.scp03_keys) <> 48 THEN
    RAISE EXCEPTION 'profile %: Ki and OPc must be 16 bytes, the SCP03 keys 48', NEW.iccid USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER profiles_key_lengths BEFORE INSERT OR UPDATE OF ki, opc, scp03_keys ON profiles
  FOR EACH ROW EXECUTE FUNCTION profiles_key_lengths();
