/**
 * The ODSA operations for companion devices (TS.43 app ap2006; docs/entitlement.md), run for a family
 * member authenticated by its token. A companion subscription is a family line of the member (the
 * primary line's number for SharedNumber, a free number of the group for DiffNumber) whose profile is
 * issued through the family issue path (ES2+ downloadOrder + confirmOrder, src/family/issue.ts),
 * linked to the companion's EID; unsubscribing removes the line, which cancels a pending order through
 * the profile state machine or, for an installed profile, ends its binding.
 *
 * Each operation runs in the caller's transaction and answers the APPLICATION characteristic. A
 * refusal is thrown as OdsaFailure so that the transaction is rolled back, then rendered as an
 * OperationResult 100–103 answer by the route.
 */
import type { Config } from '../config.js';
import type { Queryable } from '../db/db.js';
import { GROUP_EVENT, recordGroupEvent } from '../family/events.js';
import { issueProfile } from '../family/issue.js';
import { createLine, deleteLine, FamilyError, getGroup, getLine, getMember, listLines, type GroupRow, type LineRow, type MemberRow } from '../family/store.js';
import { getProfile, type ProfileRow } from '../orders/store.js';
import { buildActivationCode } from '../rsp/activation-code.js';
import { activeByEid, activeByTerminal, activeOfMember, endCompanion, insertCompanion, type CompanionRow } from './store.js';
import {
  application, characteristic, COMPANION_SERVICES, ELIGIBILITY, OPERATION, OPERATION_RESULT, OPERATION_TYPE, SERVICE_STATUS, SUBSCRIPTION_RESULT,
  type Characteristic, type CompanionService,
} from './ts43.js';

/** An ODSA refusal: OperationResult and the GeneralErrorText. */
export class OdsaFailure extends Error {
  override name = 'OdsaFailure';
  constructor(
    readonly result: number,
    message: string,
  ) {
    super(message);
  }
}

const invalidParameter = (m: string) => new OdsaFailure(OPERATION_RESULT.errorInvalidParameter, m);
const generalError = (m: string) => new OdsaFailure(OPERATION_RESULT.errorGeneral, m);

/** A family refusal inside an operation: a bad EID is the caller's parameter, anything else a general error. */
export function fromFamilyError(err: FamilyError): OdsaFailure {
  return err.code === 'invalid' ? invalidParameter(err.message) : generalError(err.message);
}

export interface OdsaCall {
  q: Queryable;
  config: Config;
  member: MemberRow;
  params: Record<string, string>;
  by: string;
}

function required(params: Record<string, string>, name: string): string {
  const v = params[name];
  if (v === undefined || v === '') throw invalidParameter(`${name} is required for this operation`);
  return v;
}

// ---------------------------------------------------------------- who and which line

interface Standing {
  group: GroupRow;
  /** The member the companion belongs to: the token's member, or (owner) the member of terminal_iccid's line. */
  subject: MemberRow;
  /** The primary device's line: terminal_iccid's, else the subject's first phone line with a number. */
  primary: LineRow | undefined;
  lines: LineRow[];
  services: CompanionService[];
  /** Why no service is offered, when none is. */
  reason?: string;
}

async function standing(c: OdsaCall, lock: boolean): Promise<Standing> {
  const group = (await getGroup(c.q, c.member.group_id, { lock }))!;
  const lines = await listLines(c.q, { groupId: group.id });
  let subject = c.member;
  let primary: LineRow | undefined;
  const iccid = c.params.terminal_iccid?.replace(/F$/i, '');
  if (iccid) {
    primary = lines.find((l) => l.iccid === iccid);
    if (!primary) throw invalidParameter(`terminal_iccid ${iccid} is not the profile of a line of the group`);
    if (primary.member_id !== c.member.id) {
      if (c.member.role !== 'owner') throw invalidParameter(`terminal_iccid ${iccid} is another member's line; only the group owner may manage companions for other members`);
      subject = (await getMember(c.q, group.id, primary.member_id))!;
    }
  } else {
    const own = lines.filter((l) => l.member_id === c.member.id && l.msisdn);
    primary = own.find((l) => l.device === 'phone') ?? own[0];
  }
  const free = group.msisdns.filter((n) => !lines.some((l) => l.msisdn === n));
  const services: CompanionService[] = [];
  const why: string[] = [];
  if (primary?.msisdn && primary.number_mode === 'shared') services.push('SharedNumber');
  else why.push(primary?.msisdn ? `SharedNumber: the primary line's number ${primary.msisdn} is its own number, not shared` : 'SharedNumber: the member has no line with a number');
  if (free.length) services.push('DiffNumber');
  else why.push('DiffNumber: the group has no free number');
  if (!group.profile_type) return { group, subject, primary, lines, services: [], reason: `the group has no plan yet` };
  return { group, subject, primary, lines, services, ...(services.length ? {} : { reason: why.join('; ') }) };
}

/** Verify the record belongs to the caller: its own, or (owner) one of its group. */
function checkMayManage(c: OdsaCall, rec: CompanionRow | undefined, terminalId: string, param: string): CompanionRow {
  if (!rec || rec.group_id !== c.member.group_id || (rec.member_id !== c.member.id && c.member.role !== 'owner')) {
    throw invalidParameter(`${param} ${terminalId} is not an active companion of this member`);
  }
  return rec;
}

/**
 * An active record whose line is gone (removed through the family API, which leaves line_id NULL)
 * is a subscription that has ended: it is closed here, before a new subscription for its companion
 * or EID, and answers undefined.
 */
async function stillActive(q: Queryable, rec: CompanionRow | undefined): Promise<CompanionRow | undefined> {
  if (!rec || rec.line_id !== null) return rec;
  await endCompanion(q, rec.id, 'unsubscribed');
  return undefined;
}

// ---------------------------------------------------------------- download information

function activationCodeOf(config: Config, p: ProfileRow): string | undefined {
  if (!p.matching_id) return undefined;
  return buildActivationCode({ smdpAddress: config.smdpAddress, matchingId: p.matching_id, confirmationCodeRequired: p.cc_digest !== null });
}

/**
 * DownloadInfo: the activation code (base64 of the LPA string, as TS.43 carries it), the ICCID and
 * the SM-DP+ address.
 */
export function downloadInfo(config: Pick<Config, 'smdpAddress'>, iccid: string, activationCode: string | undefined): Characteristic {
  return characteristic('DownloadInfo', [
    ...(activationCode ? [['ProfileActivationCode', Buffer.from(activationCode, 'utf8').toString('base64')] as [string, string]] : []),
    ['ProfileIccid', iccid],
    ['ProfileSmdpAddress', config.smdpAddress],
  ]);
}

const ACTIVATING = new Set(['Allocated', 'Linked', 'Confirmed', 'Released', 'Downloaded']);

function serviceStatus(p: ProfileRow | undefined): number {
  if (!p || p.device_state === 'Deleted') return SERVICE_STATUS.deactivated;
  if (p.state === 'Installed') return SERVICE_STATUS.activated;
  if (ACTIVATING.has(p.state)) return SERVICE_STATUS.activating;
  return SERVICE_STATUS.deactivated;
}

// ---------------------------------------------------------------- the operations

/** CheckEligibility: may this member add a companion, and with which services. */
async function checkEligibility(c: OdsaCall): Promise<Characteristic> {
  const s = await standing(c, false);
  const terminal = c.params.companion_terminal_id;
  if (terminal) {
    const rec = await activeByTerminal(c.q, terminal);
    if (rec && rec.line_id !== null && rec.group_id !== s.group.id) {
      return application(OPERATION_RESULT.success, [['CompanionAppEligibility', ELIGIBILITY.incompatible], ['NotEnabledUserData', `companion ${terminal} is subscribed in another account`]]);
    }
  }
  if (!s.services.length) {
    return application(OPERATION_RESULT.success, [['CompanionAppEligibility', ELIGIBILITY.disabled], ['NotEnabledUserData', s.reason ?? 'not eligible']]);
  }
  return application(OPERATION_RESULT.success, [['CompanionAppEligibility', ELIGIBILITY.enabled], ['CompanionDeviceServices', s.services.join(',')]]);
}

interface Companion {
  terminalId: string;
  eid: string;
  service: CompanionService;
}

function companionParams(c: OdsaCall, service?: CompanionService): Companion {
  const terminalId = required(c.params, 'companion_terminal_id');
  const eid = required(c.params, 'companion_terminal_eid');
  const s = service ?? (required(c.params, 'companion_terminal_service') as CompanionService);
  if (!COMPANION_SERVICES.includes(s)) throw invalidParameter(`companion_terminal_service must be SharedNumber or DiffNumber`);
  return { terminalId, eid, service: s };
}

/**
 * Creates the companion's line, issues its profile and records it, with the group event (subscribed,
 * or transferred from `from`); answers the download information.
 */
async function activate(c: OdsaCall, s: Standing, comp: Companion, msisdn: string | null, primaryLineId: string | null, from?: CompanionRow): Promise<{ rec: CompanionRow; answer: Characteristic }> {
  const line = await createLine(c.q, s.group, s.subject, {
    name: c.params.companion_terminal_friendly_name || `companion ${comp.terminalId}`,
    device: /tablet|\btab\b|pad/i.test(c.params.companion_terminal_model ?? '') ? 'tablet' : 'watch',
    numberMode: comp.service === 'SharedNumber' ? 'shared' : 'own',
    msisdn,
    eid: comp.eid,
  });
  const issued = await issueProfile(c.q, c.config, s.group, line, { eid: comp.eid }, c.by);
  let rec: CompanionRow;
  try {
    rec = await insertCompanion(c.q, {
      groupId: s.group.id,
      memberId: s.subject.id,
      terminalId: comp.terminalId,
      eid: comp.eid,
      service: comp.service,
      primaryLineId,
      primaryTerminalId: c.params.terminal_id ?? null,
      lineId: line.id,
      iccid: issued.iccid,
      msisdn,
      vendor: c.params.companion_terminal_vendor,
      model: c.params.companion_terminal_model,
      swVersion: c.params.companion_terminal_sw_version,
      friendlyName: c.params.companion_terminal_friendly_name,
    });
  } catch (err) {
    // Another request subscribed this companion or EID meanwhile (the partial unique indexes of migration 013).
    if ((err as { code?: string }).code === '23505') throw generalError(`companion ${comp.terminalId} or EID ${comp.eid} was subscribed meanwhile`);
    throw err;
  }
  await recordGroupEvent(c.q, s.group.id, from ? GROUP_EVENT.companionTransferred : GROUP_EVENT.companionSubscribed, {
    member: s.subject.id, companion: comp.terminalId, eid: comp.eid, service: comp.service, line: line.id, iccid: issued.iccid, msisdn,
    ...(from ? { from: from.terminal_id, fromEid: from.eid } : {}),
  });
  return {
    rec,
    answer: application(OPERATION_RESULT.success, [['SubscriptionResult', SUBSCRIPTION_RESULT.downloadProfile]], [downloadInfo(c.config, issued.iccid, issued.activationCode)]),
  };
}

/** The number a new companion line carries for its service. */
function numberFor(s: Standing, service: CompanionService): { msisdn: string; primaryLineId: string | null } {
  if (!s.services.includes(service)) throw generalError(`${service} is not available for this member: ${s.reason ?? (service === 'SharedNumber' ? 'no shared number' : 'no free number')}`);
  if (service === 'SharedNumber') return { msisdn: s.primary!.msisdn!, primaryLineId: s.primary!.id };
  return { msisdn: s.group.msisdns.find((n) => !s.lines.some((l) => l.msisdn === n))!, primaryLineId: null };
}

async function subscribe(c: OdsaCall): Promise<Characteristic> {
  const comp = companionParams(c);
  const s = await standing(c, true);
  if (!s.group.profile_type) throw generalError(`not eligible: ${s.reason}`);
  const existing = await stillActive(c.q, await activeByTerminal(c.q, comp.terminalId, { lock: true }));
  if (existing) {
    // The same request again (a retry of the phone's app): the same download information.
    if (existing.group_id === s.group.id && existing.member_id === s.subject.id && existing.eid === comp.eid && existing.service === comp.service && existing.iccid) {
      const p = await getProfile(c.q, existing.iccid);
      return application(OPERATION_RESULT.success, [['SubscriptionResult', SUBSCRIPTION_RESULT.downloadProfile]], [downloadInfo(c.config, existing.iccid, p ? activationCodeOf(c.config, p) : undefined)]);
    }
    throw generalError(`companion ${comp.terminalId} is already subscribed${existing.group_id === s.group.id ? ` (EID ${existing.eid}, ${existing.service})` : ' in another account'}; unsubscribe or transfer it first`);
  }
  if (await stillActive(c.q, await activeByEid(c.q, comp.eid))) throw generalError(`EID ${comp.eid} already carries an active companion subscription`);
  const { msisdn, primaryLineId } = numberFor(s, comp.service);
  return (await activate(c, s, comp, msisdn, primaryLineId)).answer;
}

/** Removes the record's line (a pending order is cancelled, an installed profile unbound). */
async function releaseLine(c: OdsaCall, rec: CompanionRow): Promise<void> {
  if (!rec.line_id) return;
  const line = await getLine(c.q, rec.member_id, rec.line_id, { lock: true });
  if (line) await deleteLine(c.q, line, c.by);
}

async function unsubscribe(c: OdsaCall): Promise<Characteristic> {
  const terminal = required(c.params, 'companion_terminal_id');
  await getGroup(c.q, c.member.group_id, { lock: true });
  const rec = checkMayManage(c, await activeByTerminal(c.q, terminal, { lock: true }), terminal, 'companion_terminal_id');
  await releaseLine(c, rec);
  await endCompanion(c.q, rec.id, 'unsubscribed');
  await recordGroupEvent(c.q, rec.group_id, GROUP_EVENT.companionUnsubscribed, { member: rec.member_id, companion: rec.terminal_id, eid: rec.eid, service: rec.service });
  return application(OPERATION_RESULT.success, [['SubscriptionResult', SUBSCRIPTION_RESULT.done]]);
}

/** Transfer: the subscription of old_terminal_id moves to companion_terminal_id / companion_terminal_eid, same service and number. */
async function transfer(c: OdsaCall): Promise<Characteristic> {
  const oldTerminal = required(c.params, 'old_terminal_id');
  const s0 = await standing(c, true);
  const old = checkMayManage(c, await activeByTerminal(c.q, oldTerminal, { lock: true }), oldTerminal, 'old_terminal_id');
  // A subscription whose line was removed through the family API (or with its member) has ended
  // (docs/entitlement.md): there is nothing to move, and its number may be another line's by now.
  if (old.line_id === null) throw invalidParameter(`old_terminal_id ${oldTerminal} is not an active companion of this member: its line was removed`);
  const asked = c.params.companion_terminal_service;
  if (asked && asked !== old.service) throw invalidParameter(`a transfer keeps the service (${old.service}); unsubscribe and subscribe again to change it to ${asked}`);
  const comp = companionParams(c, old.service);
  if (comp.terminalId === old.terminal_id && comp.eid === old.eid) throw invalidParameter('the new companion is the old one (same companion_terminal_id and companion_terminal_eid)');
  const other = comp.terminalId === old.terminal_id ? old : await stillActive(c.q, await activeByTerminal(c.q, comp.terminalId));
  if (other && other.id !== old.id) throw generalError(`companion ${comp.terminalId} is already subscribed; unsubscribe it first`);
  const onEid = comp.eid === old.eid ? old : await stillActive(c.q, await activeByEid(c.q, comp.eid));
  if (onEid && onEid.id !== old.id) throw generalError(`EID ${comp.eid} already carries an active companion subscription`);
  if (!s0.group.profile_type) throw generalError(`not eligible: ${s0.reason}`);

  await releaseLine(c, old);
  await endCompanion(c.q, old.id, 'transferred');
  const subject = old.member_id === s0.subject.id ? s0.subject : await getMember(c.q, s0.group.id, old.member_id);
  if (!subject) throw invalidParameter(`old_terminal_id ${oldTerminal} is not an active companion: its member was removed`);
  const s = { ...s0, subject, lines: await listLines(c.q, { groupId: s0.group.id }) };
  const { rec, answer } = await activate(c, s, comp, old.msisdn, old.primary_line_id, old);
  await c.q.query('UPDATE companion_devices SET transferred_to = $2 WHERE id = $1', [old.id, rec.id]);
  return answer;
}

/** AcquireConfiguration: the member's companions (or the one of companion_terminal_id) with their status and, while activating, the download information. */
async function acquireConfiguration(c: OdsaCall): Promise<Characteristic> {
  const terminal = c.params.companion_terminal_id;
  const recs = terminal ? [checkMayManage(c, await activeByTerminal(c.q, terminal), terminal, 'companion_terminal_id')] : await activeOfMember(c.q, c.member.id);
  const confs: Characteristic[] = [];
  for (const r of recs) {
    const p = r.iccid ? await getProfile(c.q, r.iccid) : undefined;
    // A record whose line was removed (family API) is no service any more.
    const status = r.line_id === null ? SERVICE_STATUS.deactivated : serviceStatus(p);
    confs.push(characteristic('CompanionConfiguration', [
      ['CompanionTerminalId', r.terminal_id],
      ['CompanionTerminalEid', r.eid],
      ['CompanionTerminalService', r.service],
      ...(r.iccid ? [['ICCID', r.iccid] as [string, string]] : []),
      ...(r.msisdn ? [['msisdn', r.msisdn] as [string, string]] : []),
      ['ServiceStatus', status],
    ], status === SERVICE_STATUS.activating && r.iccid && p ? [downloadInfo(c.config, r.iccid, activationCodeOf(c.config, p))] : []));
  }
  return application(OPERATION_RESULT.success, [], [characteristic('CompanionConfigurations', [], confs)]);
}

const NOT_SUPPORTED = new Set<string>([OPERATION.manageService, OPERATION.acquireTemporaryToken, OPERATION.getPhoneNumber, OPERATION.acquirePlan, OPERATION.verifyPhoneNumber]);

/** Runs the request's operation; a refusal is thrown (OdsaFailure, FamilyError). */
export async function runOperation(c: OdsaCall): Promise<Characteristic> {
  const op = c.params.operation;
  if (!op) throw invalidParameter('operation is required (CheckEligibility, ManageSubscription or AcquireConfiguration)');
  switch (op) {
    case OPERATION.checkEligibility:
      return checkEligibility(c);
    case OPERATION.acquireConfiguration:
      return acquireConfiguration(c);
    case OPERATION.manageSubscription: {
      const t = c.params.operation_type;
      if (t === undefined || t === '') throw invalidParameter('operation_type is required for ManageSubscription (0 subscribe, 1 unsubscribe, 3 transfer)');
      const type = Number(t);
      if (type === OPERATION_TYPE.subscribe) return subscribe(c);
      if (type === OPERATION_TYPE.unsubscribe) return unsubscribe(c);
      if (type === OPERATION_TYPE.transfer || (type === OPERATION_TYPE.change && c.params.old_terminal_id)) return transfer(c);
      if (type === OPERATION_TYPE.change || type === OPERATION_TYPE.update) {
        throw new OdsaFailure(OPERATION_RESULT.warningNotSupportedOperation, `operation_type ${type} is not supported here${type === OPERATION_TYPE.change ? ' without old_terminal_id (a change of device is a transfer)' : ''}`);
      }
      throw invalidParameter(`operation_type ${t} is not a ManageSubscription type (0 subscribe, 1 unsubscribe, 2 change, 3 transfer, 4 update)`);
    }
    default:
      if (NOT_SUPPORTED.has(op)) throw new OdsaFailure(OPERATION_RESULT.warningNotSupportedOperation, `${op} is not supported by this entitlement server`);
      throw new OdsaFailure(OPERATION_RESULT.errorInvalidOperation, `unknown operation ${op}`);
  }
}
