-- Family groups (issue 4). A group is owned by one operator and has one shared plan: pooled data (MB),
-- voice minutes and SMS per billing cycle, a hotspot allowance, the billing-cycle day and the group's
-- numbers (MSISDNs). Members (owner, adult, child) may have their own caps; each member has lines
-- (devices) and each line at most one current profile (ICCID).
--
-- Columns beyond the shared contract, documented here:
--   family_groups.profile_type      profile type the group's profiles are allocated from (NULL until the plan is set)
--   family_groups.msisdns           the group's numbers, text[] of E.164 digits (no '+')
--   family_groups.updated_at        last change of name/plan
--   family_members.token_sha256     SHA-256 of the member's bearer token ("fam_..."), shown once at creation
--   family_members.at_cap           what happens when a member reaches one of its caps: block or throttle
--   family_lines.name               free label ("Anna's watch")
--   family_lines.iccid              the line's current profile (NULL before issuing or after a move)
--   family_line_profiles            every profile ever bound to a line (history; rows outlive deleted
--                                   lines/members so a group's history stays readable): bound_at, released_at, reason
--   group_events                    the group's event log (recordGroupEvent in src/family/events.ts);
--                                   created here, the usage migration 006 builds on it

CREATE TABLE family_groups (
  id text PRIMARY KEY,
  operator_id text NOT NULL REFERENCES operators (id),
  name text NOT NULL,
  profile_type text REFERENCES profile_types (name),
  plan_data_mb integer NOT NULL DEFAULT 0 CHECK (plan_data_mb >= 0),
  plan_voice_min integer NOT NULL DEFAULT 0 CHECK (plan_voice_min >= 0),
  plan_sms integer NOT NULL DEFAULT 0 CHECK (plan_sms >= 0),
  hotspot_mb integer NOT NULL DEFAULT 0 CHECK (hotspot_mb >= 0),
  billing_cycle_day smallint NOT NULL DEFAULT 1 CHECK (billing_cycle_day BETWEEN 1 AND 28),
  msisdns text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX family_groups_operator ON family_groups (operator_id);

CREATE TABLE family_members (
  id text PRIMARY KEY,
  group_id text NOT NULL REFERENCES family_groups (id) ON DELETE CASCADE,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('owner', 'adult', 'child')),
  cap_data_mb integer CHECK (cap_data_mb >= 0),
  cap_voice_min integer CHECK (cap_voice_min >= 0),
  cap_sms integer CHECK (cap_sms >= 0),
  cap_hotspot_mb integer CHECK (cap_hotspot_mb >= 0),
  at_cap text NOT NULL DEFAULT 'block' CHECK (at_cap IN ('block', 'throttle')),
  token_sha256 bytea NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX family_members_group ON family_members (group_id);
-- At most one owner per group.
CREATE UNIQUE INDEX family_members_one_owner ON family_members (group_id) WHERE role = 'owner';

CREATE TABLE family_lines (
  id text PRIMARY KEY,
  group_id text NOT NULL REFERENCES family_groups (id) ON DELETE CASCADE,
  member_id text NOT NULL REFERENCES family_members (id) ON DELETE CASCADE,
  name text,
  device text NOT NULL CHECK (device IN ('phone', 'watch', 'tablet')),
  number_mode text NOT NULL CHECK (number_mode IN ('shared', 'own')),
  msisdn text CHECK (msisdn ~ '^[0-9]{5,15}$'),
  eid text CHECK (eid ~ '^[0-9]{32}$'),
  iccid text UNIQUE REFERENCES profiles (iccid),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX family_lines_member ON family_lines (member_id);
CREATE INDEX family_lines_group ON family_lines (group_id);

CREATE TABLE family_line_profiles (
  id bigserial PRIMARY KEY,
  group_id text NOT NULL,
  member_id text NOT NULL,
  line_id text NOT NULL,
  iccid text NOT NULL REFERENCES profiles (iccid),
  eid text,
  bound_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz,
  reason text
);
CREATE INDEX family_line_profiles_line ON family_line_profiles (line_id, id);
CREATE INDEX family_line_profiles_group ON family_line_profiles (group_id, id);
CREATE INDEX family_line_profiles_iccid ON family_line_profiles (iccid);

CREATE TABLE group_events (
  id bigserial PRIMARY KEY,
  group_id text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  type text NOT NULL,
  detail jsonb
);
CREATE INDEX group_events_group ON group_events (group_id, id);
