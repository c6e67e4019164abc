-- Family plans in use (issue 4): usage counters per billing cycle, the usage event log, the cycle each
-- group is in, and a test clock (src/family/{usage,clock,events}.ts). group_events comes from 005.
--
--   family_clock            offset added to the database clock: scope '*' for every group, or a group id.
--                           A group's time = now() + offset('*') + offset(group).
--   family_cycles           the billing cycle a group was last seen in (cycle_start, a UTC date on the
--                           group's billing_cycle_day). Its row is also the group's usage lock: every usage
--                           event and rollover takes it FOR UPDATE, so concurrent events are serialised
--                           per group and never overspend the pool.
--   family_usage_counters   what a cycle used, per scope: 'group' (the pool, scope_id = group id),
--                           'member' (scope_id = member id) and 'line' (scope_id = line id). data_mb includes
--                           hotspot_mb; throttled_mb is data carried after the pool ran out (not counted in
--                           data_mb); blocked counts refused events. flags: events already logged this cycle
--                           (e.g. 'capReached:data', 'poolExhausted:data') so each is logged once.
--   usage_events            every usage event with its decision (allowed | throttled | blocked) and reason.
-- Family callbacks go through the outbox with kind 'familyEvent' and outbox.iccid = 'family:<group id>',
-- which makes the worker deliver one group's events strictly in order (it orders rows by that column).

CREATE TABLE family_clock (
  scope text PRIMARY KEY,
  offset_seconds bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE family_cycles (
  group_id text PRIMARY KEY REFERENCES family_groups (id) ON DELETE CASCADE,
  cycle_start date NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE family_usage_counters (
  group_id text NOT NULL REFERENCES family_groups (id) ON DELETE CASCADE,
  cycle_start date NOT NULL,
  scope text NOT NULL CHECK (scope IN ('group', 'member', 'line')),
  scope_id text NOT NULL,
  data_mb bigint NOT NULL DEFAULT 0,
  hotspot_mb bigint NOT NULL DEFAULT 0,
  throttled_mb bigint NOT NULL DEFAULT 0,
  voice_min bigint NOT NULL DEFAULT 0,
  sms bigint NOT NULL DEFAULT 0,
  blocked integer NOT NULL DEFAULT 0,
  flags text[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (group_id, cycle_start, scope, scope_id)
);

CREATE TABLE usage_events (
  id bigserial PRIMARY KEY,
  group_id text NOT NULL REFERENCES family_groups (id) ON DELETE CASCADE,
  member_id text NOT NULL,
  line_id text NOT NULL,
  cycle_start date NOT NULL,
  at timestamptz NOT NULL,
  kind text NOT NULL CHECK (kind IN ('data', 'voice', 'sms')),
  amount integer NOT NULL CHECK (amount > 0),
  hotspot boolean NOT NULL DEFAULT false,
  decision text NOT NULL CHECK (decision IN ('allowed', 'throttled', 'blocked')),
  reason text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_events_group ON usage_events (group_id, id);
CREATE INDEX usage_events_line ON usage_events (line_id, id)
