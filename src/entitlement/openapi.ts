/**
 * The OpenAPI description of the TS.43 entitlement routes (docs/entitlement.md): summaries, the
 * answer in both its forms (the WAP provisioning document and its JSON form) and the 4xx errors.
 * The examples are rendered by the same code as the real answers (src/entitlement/ts43.ts), so they
 * cannot drift from what the routes send. The JSON schema below is also the route's serializer for
 * `application/json`: every property it leaves open (`additionalProperties: true`) is sent as is.
 */
import { errorReply, jsonReply } from '../openapi.js';
import { downloadInfo } from './odsa.js';
import {
  APP_ODSA_COMPANION, application, characteristic, ELIGIBILITY, OPERATION_RESULT, renderJson, renderXml, SERVICE_STATUS, SUBSCRIPTION_RESULT,
  tokenCharacteristic, versCharacteristic, XML_TYPE, type Characteristic,
} from './ts43.js';

const str = (description: string, extra: Record<string, unknown> = {}) => ({ type: 'string', description, ...extra });
const codes = (values: Record<string, number>) => Object.values(values).map(String);

const downloadInfoSchema = {
  type: 'object',
  additionalProperties: true,
  description: 'How the companion downloads its profile',
  required: ['ProfileIccid', 'ProfileSmdpAddress'],
  properties: {
    ProfileActivationCode: str('the activation code `LPA:1$<SM-DP+>$<MatchingID>`, base64-encoded (absent when the order has no MatchingID any more)'),
    ProfileIccid: str('the ICCID of the profile issued for the companion'),
    ProfileSmdpAddress: str('this SM-DP+'),
  },
};

/** The JSON form of an answer: `Vers`, `Token`, and the APPLICATION characteristic under its AppID. */
export const answerJsonSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['Vers', 'Token', APP_ODSA_COMPANION],
  properties: {
    Vers: {
      type: 'object', additionalProperties: true, required: ['version', 'validity'],
      properties: { version: str('the configuration version, 1'), validity: str('seconds the answer may be cached: 0, an ODSA answer is not') },
    },
    Token: {
      type: 'object', additionalProperties: true, required: ['token'],
      properties: { token: str('the token to send next time: the member token the request was authenticated with') },
    },
    [APP_ODSA_COMPANION]: {
      type: 'object',
      additionalProperties: true,
      required: ['AppID', 'OperationResult'],
      properties: {
        AppID: str('the ODSA application for companion devices', { enum: [APP_ODSA_COMPANION] }),
        OperationResult: str('1 success, 100 general error, 101 invalid operation, 102 invalid parameter, 103 not supported', { enum: codes(OPERATION_RESULT) }),
        GeneralErrorText: str('why the operation was refused (OperationResult 100–103)'),
        CompanionAppEligibility: str('CheckEligibility: 0 disabled, 1 enabled, 2 incompatible (subscribed in another account)', { enum: codes(ELIGIBILITY) }),
        CompanionDeviceServices: str('CheckEligibility, when enabled: the services the member can have now, e.g. SharedNumber,DiffNumber'),
        NotEnabledUserData: str('CheckEligibility, when not enabled: why'),
        SubscriptionResult: str('ManageSubscription: 2 download the profile (subscribe, transfer), 3 done (unsubscribe)', { enum: codes(SUBSCRIPTION_RESULT) }),
        DownloadInfo: downloadInfoSchema,
        CompanionConfigurations: {
          type: 'object',
          additionalProperties: true,
          description: "AcquireConfiguration: the member's active companions",
          properties: {
            CompanionConfiguration: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: true,
                required: ['CompanionTerminalId', 'CompanionTerminalEid', 'CompanionTerminalService', 'ServiceStatus'],
                properties: {
                  CompanionTerminalId: str('the companion_terminal_id'),
                  CompanionTerminalEid: str('the companion_terminal_eid'),
                  CompanionTerminalService: str('SharedNumber or DiffNumber', { enum: ['SharedNumber', 'DiffNumber'] }),
                  ICCID: str("the companion's profile"),
                  msisdn: str('the number the companion line carries'),
                  ServiceStatus: str('1 activated (installed), 2 activating (ordered, not installed yet), 3 deactivated', { enum: codes(SERVICE_STATUS) }),
                  DownloadInfo: downloadInfoSchema,
                },
              },
            },
          },
        },
      },
    },
  },
};

// ---------------------------------------------------------------- examples, rendered by the real code

const EXAMPLE_TOKEN = 'fam_3q2hXb0vJmQe8kR1TzYp5wLcN7aUfG4s';
const EXAMPLE_SMDP = { smdpAddress: 'smdp.example.com' };
const EXAMPLE_ICCID = '89000123456789012341';

const answerOf = (app: Characteristic) => [versCharacteristic(), tokenCharacteristic(EXAMPLE_TOKEN), app];

const EXAMPLES: Array<[name: string, summary: string, app: Characteristic]> = [
  ['subscribe', 'ManageSubscription, subscribe (operation_type=0): download the profile', application(
    OPERATION_RESULT.success,
    [['SubscriptionResult', SUBSCRIPTION_RESULT.downloadProfile]],
    [downloadInfo(EXAMPLE_SMDP, EXAMPLE_ICCID, `LPA:1$${EXAMPLE_SMDP.smdpAddress}$K3T9Q-2M8XA-7PL4D-QW1ZE`)],
  )],
  ['checkEligibility', 'CheckEligibility: enabled, with the services the member can have', application(
    OPERATION_RESULT.success,
    [['CompanionAppEligibility', ELIGIBILITY.enabled], ['CompanionDeviceServices', 'SharedNumber,DiffNumber']],
  )],
  ['acquireConfiguration', 'AcquireConfiguration: one installed companion', application(OPERATION_RESULT.success, [], [
    characteristic('CompanionConfigurations', [], [characteristic('CompanionConfiguration', [
      ['CompanionTerminalId', 'watch-000000012345'], ['CompanionTerminalEid', '89049032123451234512345678901235'], ['CompanionTerminalService', 'SharedNumber'],
      ['ICCID', EXAMPLE_ICCID], ['msisdn', '447700900001'], ['ServiceStatus', SERVICE_STATUS.activated],
    ])]),
  ])],
  ['invalidParameter', 'A refusal: OperationResult 102 (invalid parameter)', application(
    OPERATION_RESULT.errorInvalidParameter,
    [['GeneralErrorText', 'companion_terminal_eid is required for this operation']],
  )],
];

const examples = (render: (tree: Characteristic[]) => unknown) =>
  Object.fromEntries(EXAMPLES.map(([name, summary, app]) => [name, { summary, value: render(answerOf(app)) }]));

/** The 200 answer in both forms. */
const answer200 = {
  description: 'The answer (also for an ODSA refusal, which carries its OperationResult and GeneralErrorText): the WAP provisioning document by default, ' +
    'its JSON form when Accept names JSON and not the XML type. Sent with Cache-Control: no-store.',
  content: {
    [XML_TYPE]: {
      schema: str('The WAP provisioning document (wap-provisioningdoc): characteristics VERS, TOKEN and APPLICATION (AppID ap2006, OperationResult first)'),
      examples: examples(renderXml),
    },
    'application/json': {
      schema: answerJsonSchema,
      examples: examples(renderJson),
    },
  },
};

const TS43_ERRORS = {
  400: errorReply(400, {
    error: 'invalid',
    message: `this entitlement server serves app ${APP_ODSA_COMPANION} (ODSA for companion devices) only; got ap2009`,
    details: { field: 'app' },
  }, 'The request itself is refused: `app` does not name ap2006, `vers` or `terminal_id` missing or malformed, a malformed `entitlement_version` or `token`, ' +
    'or a POST body that is no JSON object. A bad ODSA parameter (operation, companion_terminal_…) is a 200 answer with OperationResult 102 instead.'),
  401: errorReply(401, { error: 'unauthorised', message: 'unknown member token' }, 'No member token (`token` or Authorization: Bearer), or an unknown one'),
};

const TS43_DESCRIPTION = 'TS.43 ODSA for companion devices (app ap2006, docs/entitlement.md). `operation` is CheckEligibility, ManageSubscription ' +
  '(`operation_type` 0 subscribe, 1 unsubscribe, 3 transfer) or AcquireConfiguration. A subscribe creates a family line of the member for the ' +
  "companion (SharedNumber: the primary line's number; DiffNumber: a free number of the plan) and issues its profile linked to " +
  '`companion_terminal_eid`; the answer carries the DownloadInfo with the activation code. Any refusal rolls the whole operation back.';

/** The documentation parts of GET /ts43 (query) and POST /ts43 (JSON body). */
export function ts43Docs(method: 'GET' | 'POST') {
  const security: Array<Record<string, string[]>> = method === 'GET' ? [{ memberToken: [] }, { memberTokenQuery: [] }] : [{ memberToken: [] }];
  return {
    tags: ['entitlement'],
    summary: method === 'GET' ? 'TS.43 entitlement request (parameters in the query)' : 'TS.43 entitlement request (parameters in a JSON body)',
    description: TS43_DESCRIPTION + (method === 'GET'
      ? ' The member token is the `token` query parameter or a bearer token.'
      : ' The body holds the same names as the GET query; numbers (vers, operation_type) are taken as their decimal text. The member token is `token` in the body or a bearer token.'),
    // GET: the token as the `token` query parameter too; POST reads `token` from its body (or the bearer token).
    security,
    response: { 200: answer200, ...TS43_ERRORS },
  };
}

const COMPANIONS_EXAMPLE = {
  companions: [{
    id: 'cd_3f1c9a7e5b2d4068', groupId: 'fg_7d2a', memberId: 'fm_4c1e', memberName: 'Kim', terminalId: 'watch-000000012345',
    eid: '89049032123451234512345678901235', service: 'SharedNumber', msisdn: '447700900001', lineId: 'fl_9b3f', iccid: EXAMPLE_ICCID,
    profileState: 'Installed', state: 'active', transferredTo: null, friendlyName: "Kim's watch", model: 'Watch 4', createdAt: '2026-01-05T10:00:00.000Z', endedAt: null,
  }],
};

/** The documentation parts of GET /admin/entitlement/companions; `schema` is schemas/entitlement/companions.json. */
export function companionsDocs(schema: Record<string, unknown>) {
  const { $id: _id, title: _title, ...body } = schema;
  return {
    tags: ['entitlement'],
    summary: 'Companion device records',
    description: 'The companion records of the TS.43 entitlement endpoint, newest first (all groups, or one): member, terminal id, EID, service, ' +
      "number, line, ICCID, the profile's state, the subscription's state (active, unsubscribed, transferred) and the record a transfer moved to.",
    security: [{ adminToken: [] }] as Array<Record<string, string[]>>,
    response: { 200: jsonReply('The companion records, newest first', body, COMPANIONS_EXAMPLE) },
  };
}
