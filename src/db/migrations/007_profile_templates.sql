-- Profile templates (docs/profiles.md): a profile type may carry an Unprotected Profile Package that
-- every order of the type is personalised from. Without one, the server builds its own profile.
ALTER TABLE profile_types ADD COLUMN template bytea;

-- The MNO security domain's SCP03 key set of a generated profile (ENC ‖ MAC ‖ DEK, 16 bytes each),
-- chosen when the profile is created and kept so that its operator can read it.
ALTER TABLE profiles ADD COLUMN scp03_keys bytea CHECK (length(scp03_keys) = 48);

-- Profiles created before this migration get fresh keys too (gen_random_uuid is a strong random source).
UPDATE profiles SET scp03_keys = substring(
  sha256(convert_to(gen_random_uuid()::text || iccid, 'UTF8')) || sha256(convert_to(gen_random_uuid()::text || iccid, 'UTF8'))
  FROM 1 FOR 48) WHERE scp03_keys IS NULL;
