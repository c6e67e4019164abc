-- Companion devices activated through the TS.43 entitlement endpoint (issue 12, docs/entitlement.md).
-- One row per companion subscription: the companion's terminal id (e.g. its IMEI) and EID, the
-- service (SharedNumber: the primary line's number; DiffNumber: a number of its own), the family line
-- created for it and the profile issued for that line.
--
--   terminal_id          the companion's companion_terminal_id
--   eid                  the companion's companion_terminal_eid (the profile is linked to it)
--   service              SharedNumber or DiffNumber (companion_terminal_service)
--   primary_line_id      the member's line whose number a SharedNumber companion shares (NULL for DiffNumber)
--   primary_terminal_id  terminal_id of the primary device's request
--   line_id              the family line of the companion (NULL once the line is removed)
--   iccid                the profile issued for the line (kept after unsubscribe, for the history)
--   msisdn               the number the companion line carries
--   state                active, unsubscribed or transferred (to the row transferred_to)
--   vendor, model, sw_version, friendly_name   companion_terminal_vendor, _model, _sw_version, _friendly_name
-- Rows go with their group (ON DELETE CASCADE); a removed line leaves the row (line_id NULL).

CREATE TABLE companion_devices (
  id text PRIMARY KEY,
  group_id text NOT NULL REFERENCES family_groups (id) ON DELETE CASCADE,
  member_id text NOT NULL,
  terminal_id text NOT NULL CHECK (length(terminal_id) BETWEEN 1 AND 64),
  eid text NOT NULL CHECK (eid ~ '^[0-9]{32}$'),
  service text NOT NULL CHECK (service IN ('SharedNumber', 'DiffNumber')),
  primary_line_id text,
  primary_terminal_id text,
  line_id text REFERENCES family_lines (id) ON DELETE SET NULL,
  iccid text,
  msisdn text,
  state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'unsubscribed', 'transferred')),
  transferred_to text,
  vendor text,
  model text,
  sw_version text,
  friendly_name text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  ended_at timestamptz
);
CREATE INDEX companion_devices_group ON companion_devices (group_id, created_at);
CREATE INDEX companion_devices_member ON companion_devices (member_id);
-- A companion terminal is subscribed at most once at a time, and an EID carries one active companion.
CREATE UNIQUE INDEX companion_devices_active_terminal ON companion_devices (terminal_id) WHERE state = 'active';
CREATE UNIQUE INDEX companion_devices_active_eid ON companion_devices (eid) WHERE state = 'active';
