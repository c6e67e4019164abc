/**
 * Issuing a profile for a family line and moving a line to another device. Issuing is the ES2+
 * order pipeline run by the SM-DP+ itself for the group's operator, in one transaction: pick an
 * Available profile of the plan's profile type that the operator owns, downloadOrder (Allocated, or
 * Linked with an EID), confirmOrder with release (Released, generated MatchingID, optional
 * confirmation code digest, the operator's limits), then bind it to group, member and line.
 */
import type { Config } from '../config.js';
import type { Queryable } from '../db/db.js';
import { confirmationCodeDigest } from '../crypto/hashcc.js';
import { FunctionFailed, SC } from '../errors.js';
import { checkEid } from '../es2plus/auth.js';
import { checkMatchingIdFree } from '../es2plus/confirm-order.js';
import { checkProfileTypeKnown, orderLimits, pickAvailableProfile } from '../es2plus/download-order.js';
import { getOperator } from '../operators/store.js';
import { lockProfile, transition } from '../orders/state-machine.js';
import { generateMatchingId } from '../orders/store.js';
import { buildActivationCode } from '../rsp/activation-code.js';
import { familyProfileEvent, GROUP_EVENT, recordGroupEvent } from './events.js';
import { bindProfile, FamilyError, liveState, profilesOf, unbindProfile, type FamilyProfile, type GroupRow, type LineRow } from './store.js';

export interface IssueRequest {
  eid?: string;
  confirmationCode?: string;
}

export interface IssuedProfile {
  groupId: string;
  memberId: string;
  lineId: string;
  iccid: string;
  eid: string | null;
  matchingId: string;
  activationCode: string;
  confirmationCodeRequired: boolean;
  qr: { png: string; svg: string };
}

/** ES2+ statuses of the pipeline as family API errors (the SGP.22 code kept in the message). */
function asFamilyError(err: FunctionFailed): FamilyError {
  const s = err.status;
  const code = s === SC.eidInvalid || s === SC.matchingIdInvalid || s === SC.profileTypeUnknown ? 'invalid' : 'conflict';
  return new FamilyError(code, `${err.message} (${s.subjectCode}/${s.reasonCode})`);
}

/** A MatchingID no other order uses (checked with the ES2+ check). */
async function freshMatchingId(q: Queryable, iccid: string): Promise<string> {
  for (;;) {
    const m = generateMatchingId();
    try {
      await checkMatchingIdFree(q, iccid, m);
      return m;
    } catch (err) {
      if (!(err instanceof FunctionFailed)) throw err;
    }
  }
}

/** Verify the line holds no live profile: none, or one deleted on its device (then the binding ends here). */
async function checkLineFree(q: Queryable, line: LineRow): Promise<LineRow> {
  if (!line.iccid) return line;
  await lockProfile(q, line.iccid);
  const p = (await profilesOf(q, [line.iccid])).get(line.iccid);
  if (p && p.device_state !== 'Deleted' && p.state !== 'Available' && p.state !== 'Unavailable') {
    throw new FamilyError('conflict', `line ${line.id} already has profile ${p.iccid} (${liveState(p)}); delete it on the device or move the line first`);
  }
  return unbindProfile(q, line, p?.device_state === 'Deleted' ? 'deleted' : 'cancelled');
}

/** Issues a profile for the line (locked by the caller's transaction). */
export async function issueProfile(q: Queryable, config: Config, group: GroupRow, line: LineRow, req: IssueRequest, by: string): Promise<IssuedProfile> {
  try {
    const eid = req.eid !== undefined ? checkEid(req.eid) : line.eid;
    if (!group.profile_type) throw new FamilyError('conflict', `group ${group.id} has no plan yet: PUT /family/groups/${group.id}/plan first`);
    const op = await getOperator(q, group.operator_id);
    if (!op) throw new FamilyError('conflict', `operator ${group.operator_id} is gone`);
    const free = await checkLineFree(q, line);

    await checkProfileTypeKnown(q, group.profile_type);
    const p = await pickAvailableProfile(q, op, group.profile_type);
    const detail = { via: 'family', operator: op.id, group: group.id, member: line.member_id, line: line.id, by };
    const ordered = await transition(q, p, {
      action: 'downloadOrder',
      to: eid ? 'Linked' : 'Allocated',
      set: { eid: eid ?? null, matching_id: null, cc_digest: null, cc_attempts: 0, download_attempts: 0, device_state: null, ...orderLimits(op) },
      detail: { ...detail, ...(eid ? { eid } : {}) },
    });
    const matchingId = await freshMatchingId(q, ordered.iccid);
    const cc = req.confirmationCode ? confirmationCodeDigest(req.confirmationCode) : null;
    const released = await transition(q, ordered, {
      action: 'confirmOrder',
      to: 'Released',
      set: { eid: eid ?? null, matching_id: matchingId, cc_digest: cc, cc_attempts: 0 },
      detail: { ...detail, matchingId, eid: eid ?? null, confirmationCode: cc !== null },
    });

    await bindProfile(q, free, released.iccid, eid ?? null);
    await familyProfileEvent(q, released.iccid, GROUP_EVENT.profileIssued, { matchingId, confirmationCode: cc !== null, by });
    return {
      groupId: group.id,
      memberId: line.member_id,
      lineId: line.id,
      iccid: released.iccid,
      eid: eid ?? null,
      matchingId,
      activationCode: buildActivationCode({ smdpAddress: config.smdpAddress, matchingId, confirmationCodeRequired: cc !== null }),
      confirmationCodeRequired: cc !== null,
      qr: { png: `/admin/activation-codes/${matchingId}.png`, svg: `/admin/activation-codes/${matchingId}.svg` },
    };
  } catch (err) {
    if (err instanceof FunctionFailed) throw asFamilyError(err);
    throw err;
  }
}

/**
 * Verify the line's profile may be left behind by a move: deleted on the device (a verified delete
 * notification) or its order cancelled (the profile is Available/Unavailable again).
 */
function checkProfileReleasable(line: LineRow, p: FamilyProfile | undefined): void {
  if (!p || p.device_state === 'Deleted' || p.state === 'Available' || p.state === 'Unavailable') return;
  const where = p.eid ? ` on EID ${p.eid}` : '';
  throw new FamilyError('conflict',
    `line ${line.id} still has profile ${p.iccid} (${liveState(p)}${where}): delete it on the old device (the SM-DP+ must receive the ` +
    `verified delete notification) or cancel its order (ES2+ cancelOrder, or remove the line) before moving the line`);
}

/** Moves the line (locked) to a new device: the old profile's binding ends, the line gets the new EID (or none yet). */
export async function moveLine(q: Queryable, line: LineRow, newEid: string | undefined, by: string): Promise<{ line: LineRow; previous: { iccid: string; state: string } | null }> {
  const eid = newEid !== undefined ? checkEidOrInvalid(newEid) : null;
  let previous: { iccid: string; state: string } | null = null;
  if (line.iccid) {
    await lockProfile(q, line.iccid);
    const p = (await profilesOf(q, [line.iccid])).get(line.iccid);
    checkProfileReleasable(line, p);
    previous = { iccid: line.iccid, state: p ? liveState(p) : 'gone' };
  }
  const moved = line.iccid
    ? await unbindProfile(q, line, 'moved', { eid })
    : (await q.query<LineRow>('UPDATE family_lines SET eid = $2, updated_at = now() WHERE id = $1 RETURNING *', [line.id, eid]))[0]!;
  await recordGroupEvent(q, line.group_id, GROUP_EVENT.lineMoved, { member: line.member_id, line: line.id, fromEid: line.eid, toEid: eid, previous, by });
  return { line: moved, previous };
}

function checkEidOrInvalid(eid: string): string {
  try {
    return checkEid(eid);
  } catch (err) {
    if (err instanceof FunctionFailed) throw asFamilyError(err);
    throw err;
  }
}
