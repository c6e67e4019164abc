/**
 * JSON Schemas of the console's routes (querystrings, parameters and responses). Text parameters are
 * patterns that refuse NUL and lone surrogates (Fastify's Ajv compiles patterns with the u flag, in
 * which a lone surrogate is a code point of its own and a valid pair is one astral code point).
 */

/** Printable text without NUL or lone surrogates, 1 to `max` characters. */
export const text = (max: number, description?: string) => ({
  type: 'string', pattern: `^[^\\u0000-\\u001f\\ud800-\\udfff]{1,${max}}$`, ...(description ? { description } : {}),
}) as const;

export const BIN = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'a name of your choice: letters, digits, . _ -' } as const;
export const ICCID = { type: 'string', pattern: '^[0-9]{19,20}F?$' } as const;
export const GROUP_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } as const;

export const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string' },
    message: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
  },
} as const;

const nullableString = { type: 'string', nullable: true } as const;
const anyObject = { type: 'object', additionalProperties: true } as const;

export const callbackSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    operatorId: { type: 'string' },
    kind: { type: 'string', description: 'handleDownloadProgressInfo (ES2+) or familyEvent' },
    iccid: nullableString,
    groupId: nullableString,
    url: { type: 'string' },
    state: { type: 'string', enum: ['pending', 'retrying', 'delivered'] },
    attempts: { type: 'integer' },
    lastError: nullableString,
    createdAt: { type: 'string' },
    deliveredAt: nullableString,
    nextAttemptAt: nullableString,
    summary: { type: 'string' },
    payload: anyObject,
  },
} as const;

export const callbacksQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    iccid: ICCID,
    groupId: GROUP_ID,
    operator: text(64),
    state: { type: 'string', enum: ['pending', 'retrying', 'delivered', 'undelivered'] },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
} as const;

export const caughtRequestSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    bin: { type: 'string' },
    receivedAt: { type: 'string' },
    method: { type: 'string' },
    path: { type: 'string' },
    answered: { type: 'integer', description: 'the HTTP status the catcher answered' },
    size: { type: 'integer' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    body: { type: 'string', description: 'the body as UTF-8 text' },
    truncated: { type: 'boolean', description: 'the body is cut to its first 64 KiB (lists only; the request itself has it whole)' },
    json: { description: 'the body parsed, when it is JSON (else null)' },
    summary: nullableString,
  },
} as const;

export const caughtListQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    bin: BIN,
    after: { type: 'string', pattern: '^[0-9]{1,18}$' },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
} as const;

const limitSchema = { type: 'object', properties: { limit: { type: 'integer', nullable: true }, used: { type: 'number' }, remaining: { type: 'integer', nullable: true } } } as const;

export const groupSummarySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    operatorId: { type: 'string' },
    name: { type: 'string' },
    plan: anyObject,
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    members: { type: 'integer' },
    lines: { type: 'integer' },
  },
} as const;

const lineSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    memberId: { type: 'string' },
    name: nullableString,
    device: { type: 'string' },
    numberMode: { type: 'string' },
    msisdn: nullableString,
    eid: nullableString,
    iccid: nullableString,
    profile: {
      type: 'object', nullable: true,
      properties: {
        iccid: { type: 'string' }, state: { type: 'string', description: 'live state: the order state, or Enabled/Disabled/Deleted as the eUICC reported' },
        orderState: { type: 'string' }, deviceState: nullableString, eid: nullableString, matchingId: nullableString, updatedAt: { type: 'string' },
      },
    },
    usage: anyObject,
  },
} as const;

export const groupDetailSchema = {
  type: 'object',
  properties: {
    group: { type: 'object', properties: { id: { type: 'string' }, operatorId: { type: 'string' }, name: { type: 'string' }, plan: anyObject, createdAt: { type: 'string' }, updatedAt: { type: 'string' } } },
    profileStates: { type: 'object', additionalProperties: { type: 'integer' } },
    cycle: anyObject,
    clock: anyObject,
    pool: {
      type: 'object',
      properties: {
        data: { ...limitSchema, properties: { ...limitSchema.properties, throttledMb: { type: 'number' }, exhausted: { type: 'boolean' } } },
        hotspot: limitSchema,
        voice: { ...limitSchema, properties: { ...limitSchema.properties, exhausted: { type: 'boolean' } } },
        sms: { ...limitSchema, properties: { ...limitSchema.properties, exhausted: { type: 'boolean' } } },
        blocked: { type: 'integer' },
      },
    },
    members: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' }, caps: anyObject, createdAt: { type: 'string' },
          usage: {
            type: 'object',
            properties: { data: limitSchema, hotspot: limitSchema, voice: limitSchema, sms: limitSchema, throttledMb: { type: 'number' }, blocked: { type: 'integer' } },
          },
          lines: { type: 'array', items: lineSchema },
        },
      },
    },
    events: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, at: { type: 'string' }, type: { type: 'string' }, detail: { type: 'object', nullable: true, additionalProperties: true } } } },
  },
} as const;

// ---------------------------------------------------------------- examples (OpenAPI)

export const CALLBACK_EXAMPLE = {
  id: '42', operatorId: 'acme', kind: 'handleDownloadProgressInfo', iccid: '89000123456789012341', groupId: null,
  url: 'http://127.0.0.1:8443/catcher/acme', state: 'delivered', attempts: 1, lastError: null,
  createdAt: '2026-12-01T10:00:00.000Z', deliveredAt: '2026-12-01T10:00:00.120Z', nextAttemptAt: null,
  summary: 'point 4 Executed-Success',
  payload: {
    header: { functionCallIdentifier: '5f0c6a4e-3f5e-4c59-9a55-7f0e3b7d2b1a' }, eid: '89049032123451234512345678901235', iccid: '89000123456789012341',
    profileType: 'default', timestamp: '2026-12-01T10:00:00Z', notificationPointId: 4, notificationPointStatus: { status: 'Executed-Success' },
  },
};

export const CAUGHT_EXAMPLE = {
  id: '7', bin: 'acme', receivedAt: '2026-12-01T10:00:00.118Z', method: 'POST', path: '/catcher/acme', answered: 200, size: 241,
  headers: { 'content-type': 'application/json;charset=UTF-8', 'user-agent': 'mock-smdp', 'x-admin-protocol': 'gsma/rsp/v2.5.0' },
  body: '{"iccid":"89000123456789012341","notificationPointId":4,"notificationPointStatus":{"status":"Executed-Success"}}',
  truncated: false,
  json: { iccid: '89000123456789012341', notificationPointId: 4, notificationPointStatus: { status: 'Executed-Success' } },
  summary: '89000123456789012341 point 4 Executed-Success',
};

const PLAN_EXAMPLE = { profileType: 'default', dataMb: 20480, voiceMin: 3000, sms: 1000, hotspotMb: 5120, billingCycleDay: 1, msisdns: ['447700900001'] };

export const GROUP_SUMMARY_EXAMPLE = {
  id: 'fg_2f6c1d0e9a8b7c6d', operatorId: 'acme', name: 'The Lindqvists', plan: PLAN_EXAMPLE,
  createdAt: '2026-12-01T09:00:00.000Z', updatedAt: '2026-12-01T09:00:00.000Z', members: 2, lines: 3,
};

const lim = (limit: number | null, used: number) => ({ limit, used, remaining: limit === null ? null : limit - used });

export const GROUP_DETAIL_EXAMPLE = {
  group: { id: GROUP_SUMMARY_EXAMPLE.id, operatorId: 'acme', name: 'The Lindqvists', plan: PLAN_EXAMPLE, createdAt: '2026-12-01T09:00:00.000Z', updatedAt: '2026-12-01T09:00:00.000Z' },
  profileStates: { Installed: 1, Released: 1 },
  cycle: { start: '2026-12-01', end: '2027-01-01', daysLeft: 31, current: true },
  clock: { now: '2026-12-01T10:00:00.000Z', offsetSeconds: 0 },
  pool: { data: { ...lim(20480, 1200), throttledMb: 0, exhausted: false }, hotspot: lim(5120, 0), voice: { ...lim(3000, 12), exhausted: false }, sms: { ...lim(1000, 3), exhausted: false }, blocked: 0 },
  members: [{
    id: 'fm_0a1b2c3d4e5f6a7b', name: 'Kim', role: 'child', caps: { dataMb: 2048, voiceMin: null, sms: null, hotspotMb: null, atCap: 'block' }, createdAt: '2026-12-01T09:00:00.000Z',
    usage: { data: lim(2048, 1200), hotspot: lim(null, 0), voice: lim(null, 12), sms: lim(null, 3), throttledMb: 0, blocked: 0 },
    lines: [{
      id: 'fl_1a2b3c4d5e6f7a8b', memberId: 'fm_0a1b2c3d4e5f6a7b', name: "Kim's phone", device: 'phone', numberMode: 'shared', msisdn: null,
      eid: '89049032123451234512345678901235', iccid: '89000123456789012341',
      profile: { iccid: '89000123456789012341', state: 'Installed', orderState: 'Installed', deviceState: 'Disabled', eid: '89049032123451234512345678901235', matchingId: 'K3T9Q-2M8XA-7PL4D-QW1ZE', updatedAt: '2026-12-01T09:30:00.000Z' },
      usage: { dataMb: 1200, hotspotMb: 0, throttledMb: 0, voiceMin: 12, sms: 3, blocked: 0 },
    }],
  }],
  events: [{ id: '12', at: '2026-12-01T09:30:00.000Z', type: 'profile-installed', detail: { iccid: '89000123456789012341' } }],
};

export const SSE_EXAMPLE = 'event: hello\ndata: {"type":"hello","pollMs":500,"pid":4242}\n\n' +
  'event: order\ndata: {"type":"order","order":{"iccid":"89000123456789012341","state":"Installed"},"events":["installed"]}\n\n';
