-- Family controls (issue 12, docs/family.md): time windows, trusted and emergency numbers, roaming
-- allowances and passes, add-on purchases with a spend limit and the owner's approval.
--
--   family_groups.time_zone           IANA zone the members' time windows are read in (default UTC)
--   family_groups.emergency_numbers   numbers always allowed (voice and SMS), whatever the controls, pool or caps
--   family_groups.home_country        ISO 3166-1 alpha-2; usage with another visited country is roaming
--                                     (NULL: every usage that names a visited country is roaming)
--   family_groups.roaming_*           the pooled roaming allowance per billing cycle; roaming_at_allowance:
--                                     block or throttle (data) once it is used up
--   family_groups.pass_currency       ISO 4217 code of the add-on prices (minor units)
--   family_groups.pass_offers         the add-ons members can buy: [{ id, name, kind: roaming|data, dataMb,
--                                     voiceMin, sms, validityHours, price }] (jsonb, validated by
--                                     schemas/family/passes.json)
--   family_members.time_windows       [{ name, blocks: [voice|sms|data], days: [mon..sun], from: 'HH:MM', to: 'HH:MM' }]
--   family_members.trusted_numbers    numbers a member may call and text during its time windows
--   family_members.roaming_cap_*      the member's own roaming allowance per cycle (NULL: only the pool's)
--   family_members.spend_limit        add-on spending per billing cycle, minor units (NULL: no limit)
--   family_usage_counters.roaming_*   usage drawn from the roaming allowance (never from the home pool);
--                                     roaming_throttled_mb: roaming data carried throttled
--   usage_events.other_party          the number called or texted (voice, SMS)
--   usage_events.visited_country      the country the line was in (NULL: home)
--   usage_events.roaming              whether the event counted as roaming
--   usage_events.rule                 the rule that decided ('time-window:school', 'emergency-number', 'pool', …)
--   usage_events.purchase_id          the pass the event drew from
--   family_purchases                  every add-on purchase: pending (waits for the owner) → active or
--                                     declined; the pass's terms are copied at purchase; used_* is what
--                                     usage drew from it; cycle_start is the billing cycle it is charged to

ALTER TABLE family_groups ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';
ALTER TABLE family_groups ADD COLUMN emergency_numbers text[] NOT NULL DEFAULT '{112,911,999,000,110,119}';
ALTER TABLE family_groups ADD COLUMN home_country text CHECK (home_country ~ '^[A-Z]{2}$');
ALTER TABLE family_groups ADD COLUMN roaming_data_mb integer NOT NULL DEFAULT 0 CHECK (roaming_data_mb >= 0);
ALTER TABLE family_groups ADD COLUMN roaming_voice_min integer NOT NULL DEFAULT 0 CHECK (roaming_voice_min >= 0);
ALTER TABLE family_groups ADD COLUMN roaming_sms integer NOT NULL DEFAULT 0 CHECK (roaming_sms >= 0);
ALTER TABLE family_groups ADD COLUMN roaming_at_allowance text NOT NULL DEFAULT 'block' CHECK (roaming_at_allowance IN ('block', 'throttle'));
ALTER TABLE family_groups ADD COLUMN pass_currency text NOT NULL DEFAULT 'EUR' CHECK (pass_currency ~ '^[A-Z]{3}$');
ALTER TABLE family_groups ADD COLUMN pass_offers jsonb NOT NULL DEFAULT '[]';

ALTER TABLE family_members ADD COLUMN time_windows jsonb NOT NULL DEFAULT '[]';
ALTER TABLE family_members ADD COLUMN trusted_numbers text[] NOT NULL DEFAULT '{}';
ALTER TABLE family_members ADD COLUMN roaming_cap_data_mb integer CHECK (roaming_cap_data_mb >= 0);
ALTER TABLE family_members ADD COLUMN roaming_cap_voice_min integer CHECK (roaming_cap_voice_min >= 0);
ALTER TABLE family_members ADD COLUMN roaming_cap_sms integer CHECK (roaming_cap_sms >= 0);
ALTER TABLE family_members ADD COLUMN spend_limit integer CHECK (spend_limit >= 0);

ALTER TABLE family_usage_counters ADD COLUMN roaming_data_mb bigint NOT NULL DEFAULT 0;
ALTER TABLE family_usage_counters ADD COLUMN roaming_voice_min bigint NOT NULL DEFAULT 0;
ALTER TABLE family_usage_counters ADD COLUMN roaming_sms bigint NOT NULL DEFAULT 0;
ALTER TABLE family_usage_counters ADD COLUMN roaming_throttled_mb bigint NOT NULL DEFAULT 0;

ALTER TABLE usage_events ADD COLUMN other_party text;
ALTER TABLE usage_events ADD COLUMN visited_country text;
ALTER TABLE usage_events ADD COLUMN roaming boolean NOT NULL DEFAULT false;
ALTER TABLE usage_events ADD COLUMN rule text;
ALTER TABLE usage_events ADD COLUMN purchase_id text;

CREATE TABLE family_purchases (
  id text PRIMARY KEY,
  group_id text NOT NULL REFERENCES family_groups (id) ON DELETE CASCADE,
  member_id text NOT NULL REFERENCES family_members (id) ON DELETE CASCADE,
  pass_id text NOT NULL,
  name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('roaming', 'data')),
  data_mb integer NOT NULL DEFAULT 0,
  voice_min integer NOT NULL DEFAULT 0,
  sms integer NOT NULL DEFAULT 0,
  validity_hours integer NOT NULL CHECK (validity_hours > 0),
  price integer NOT NULL CHECK (price >= 0),
  currency text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'active', 'declined')),
  requested_by text NOT NULL,
  decided_by text,
  requested_at timestamptz NOT NULL,
  decided_at timestamptz,
  activated_at timestamptz,
  expires_at timestamptz,
  cycle_start date,
  used_data_mb bigint NOT NULL DEFAULT 0,
  used_voice_min bigint NOT NULL DEFAULT 0,
  used_sms bigint NOT NULL DEFAULT 0
);
CREATE INDEX family_purchases_group ON family_purchases (group_id, status);
CREATE INDEX family_purchases_member ON family_purchases (member_id, status);
