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

const nullableString = { type: ['string', 'null'] } as const;
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

const limitSchema = { type: 'object', properties: { limit: { type: ['integer', 'null'] }, used: { type: 'number' }, remaining: { type: ['integer', 'null'] } } } as const;

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
      type: ['object', 'null'],
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
    events: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, at: { type: 'string' }, type: { type: 'string' }, detail: { type: ['object', 'null'], additionalProperties: true } } } },
  },
} as const;
