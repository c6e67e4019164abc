/**
 * Response schemas of the admin API (OpenAPI, and Fastify's serialiser: a field missing here is not
 * sent), with the examples the document shows. Request schemas are in schemas/admin/ and the routes.
 */
import { nullableString } from '../openapi.js';

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const bool = { type: 'boolean' } as const;
const nullableInt = { type: 'integer', nullable: true } as const;
const obj = (properties: Record<string, unknown>, required = Object.keys(properties)) => ({ type: 'object', required, properties });
const list = (items: unknown) => ({ type: 'array', items });

export const EXAMPLE_ICCID = '89000123456789012341';
export const EXAMPLE_MATCHING_ID = 'K3T9Q-2M8XA-7PL4D-QW1ZE';
const at = '2026-01-01T12:00:00.000Z';

/** publicProfile (src/orders/store.ts). */
export const profileSchema = obj({
  iccid: str, profileType: str, imsi: str, state: str, deviceState: nullableString, eid: nullableString, matchingId: nullableString,
  confirmationCodeRequired: bool, confirmationCodeAttempts: int, downloadAttempts: int, maxDownloadAttempts: int,
  expiresAt: nullableString, updatedAt: str,
});
export const profileExample = {
  iccid: EXAMPLE_ICCID, profileType: 'default', imsi: '001010123456789', state: 'Released', deviceState: null, eid: null,
  matchingId: EXAMPLE_MATCHING_ID, confirmationCodeRequired: false, confirmationCodeAttempts: 0, downloadAttempts: 0,
  maxDownloadAttempts: 5, expiresAt: null, updatedAt: at,
};
export const activationCodeExample = `LPA:1$SMDP.EXAMPLE.COM$${EXAMPLE_MATCHING_ID}`;

export const orderSchema = { ...profileSchema, required: [...profileSchema.required, 'activationCode'], properties: { ...profileSchema.properties, activationCode: str } };
export const orderExample = { ...profileExample, activationCode: activationCodeExample };
export const ordersSchema = obj({ orders: list(orderSchema) });

const historySchema = list(obj({ at: str, event: str, detail: {} }, ['at', 'event']));
const historyExample = [{ at, event: 'created', detail: { profileType: 'default' } }, { at, event: 'released', detail: { matchingId: EXAMPLE_MATCHING_ID, eid: null, confirmationCode: false } }];

export const profileDetailSchema = {
  ...profileSchema,
  required: [...profileSchema.required, 'history', 'notifications'],
  properties: {
    ...profileSchema.properties,
    history: historySchema,
    notifications: list(obj({ at: str, kind: str, verified: bool, outcome: nullableString, seqNumber: nullableInt })),
  },
};
export const profileDetailExample = { ...profileExample, history: historyExample, notifications: [] };

export const historyResponseSchema = obj({ iccid: str, state: str, history: historySchema });
export const historyResponseExample = { iccid: EXAMPLE_ICCID, state: 'Released', history: historyExample };

export const keysSchema = obj({
  iccid: str, imsi: str, ki: str, opc: str, source: { type: 'string', enum: ['template', 'generated'] },
  securityDomains: list(obj({ instanceAid: str, keys: list(obj({ usage: str, id: str, kvn: str, type: str, key: str })) })),
});
export const keysExample = {
  iccid: EXAMPLE_ICCID, imsi: '001010123456789', ki: '000102030405060708090A0B0C0D0E0F', opc: '0F0E0D0C0B0A09080706050403020100', source: 'generated',
  securityDomains: [{ instanceAid: 'A000000151000000', keys: [{ usage: '38', id: '01', kvn: '30', type: 'aes', key: '00112233445566778899AABBCCDDEEFF' }] }],
};

export const profilesSchema = obj({ profiles: list(profileSchema) });

/** inventoryView: a profile with its operator. */
const inventoryProfileSchema = { ...profileSchema, required: [...profileSchema.required, 'operator'], properties: { ...profileSchema.properties, operator: nullableString } };
const inventoryProfileExample = { ...profileExample, state: 'Available', matchingId: null, operator: 'op-1' };
const stateCounts = { type: 'object', additionalProperties: { type: 'integer' } };

export const ordersListSchema = obj({
  orders: list({ ...inventoryProfileSchema, required: [...inventoryProfileSchema.required, 'smdsAddress', 'activationCode'], properties: { ...inventoryProfileSchema.properties, smdsAddress: nullableString, activationCode: nullableString } }),
});
export const ordersListExample = { orders: [{ ...profileExample, operator: null, smdsAddress: null, activationCode: activationCodeExample }] };

export const inventorySchema = obj({
  filter: obj({ type: nullableString, operator: nullableString, state: nullableString }),
  total: int, counts: stateCounts, profiles: list(inventoryProfileSchema),
});
export const inventoryExample = {
  filter: { type: 'default', operator: null, state: null }, total: 1,
  counts: { Available: 1, Allocated: 0, Linked: 0, Confirmed: 0, Released: 0, Downloaded: 0, Installed: 0, Error: 0, Unavailable: 0 },
  profiles: [inventoryProfileExample],
};

const templateSchema = {
  type: 'object', nullable: true,
  required: ['bytes', 'sha256', 'saipVersion', 'profileElements', 'profileType', 'iccid', 'imsi', 'algorithm'],
  properties: { bytes: int, sha256: str, saipVersion: str, profileElements: int, profileType: nullableString, iccid: str, imsi: str, algorithm: str },
};
export const profileTypeSchema = obj({ name: str, serviceProviderName: str, profileName: str, profileClass: { type: 'integer', enum: [0, 1, 2] }, template: templateSchema });
export const profileTypeExample = { name: 'lab', serviceProviderName: 'Lab Operator', profileName: 'Lab profile', profileClass: 0, template: null };
export const profileTypesSchema = obj({
  profileTypes: list({ ...profileTypeSchema, required: [...profileTypeSchema.required, 'counts'], properties: { ...profileTypeSchema.properties, counts: stateCounts } }),
});
export const profileTypesExample = { profileTypes: [{ ...profileTypeExample, counts: { Available: 10, Released: 1 } }] };

export const importSchema = obj({ imported: int, type: str, operator: nullableString, iccids: list(str) });
export const importExample = { imported: 1, type: 'lab', operator: 'op-1', iccids: [EXAMPLE_ICCID] };
export const generateSchema = obj({ generated: int, type: str, operator: nullableString, iccids: list(str) });
export const generateExample = { generated: 1, type: 'lab', operator: null, iccids: [EXAMPLE_ICCID] };

/** publicOperator (src/operators/store.ts). */
export const operatorSchema = obj({
  id: str, name: str, callbackUrl: nullableString, hasApiKey: bool, clientCertSha256: nullableString,
  ccMaxAttempts: int, maxDownloadAttempts: int, orderTtlSeconds: nullableInt, createdAt: str,
});
export const operatorExample = {
  id: 'op-1', name: 'Operator One', callbackUrl: 'http://127.0.0.1:9000/callbacks', hasApiKey: true, clientCertSha256: null,
  ccMaxAttempts: 3, maxDownloadAttempts: 5, orderTtlSeconds: null, createdAt: at,
};
export const operatorCreatedSchema = { ...operatorSchema, properties: { ...operatorSchema.properties, apiKey: { type: 'string', description: 'shown once; only its SHA-256 is stored' } } };
export const operatorCreatedExample = { ...operatorExample, apiKey: 'msk_3q2-7wLr0Jd0p1x0QmZ4c8n9YV5fA6bE' };
export const operatorsSchema = obj({ operators: list(operatorSchema) });

/** faultView (src/es9plus/faults.ts). */
export const faultSchema = obj({
  id: str, iccid: nullableString, matchingId: nullableString, eid: nullableString, function: nullableString, mode: { type: 'string', enum: ['fail', 'delay', 'drop'] },
  subjectCode: nullableString, reasonCode: nullableString, message: nullableString, delayMs: nullableInt, remaining: int, fired: int,
  createdAt: str, lastFiredAt: nullableString,
});
export const faultExample = {
  id: '1', iccid: null, matchingId: EXAMPLE_MATCHING_ID, eid: null, function: 'authenticateClient', mode: 'fail', subjectCode: '8.2.6', reasonCode: '3.8',
  message: null, delayMs: null, remaining: 1, fired: 0, createdAt: at, lastFiredAt: null,
};
export const faultsSchema = obj({ faults: list(faultSchema) });

/** A path parameter naming a profile by ICCID. */
export const iccidParams = {
  type: 'object', required: ['iccid'],
  properties: { iccid: { type: 'string', maxLength: 32, description: '19 or 20 digits (a trailing F allowed after 19)' } },
};
