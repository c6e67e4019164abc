/**
 * ES10c (LPA <-> eUICC local profile management, SGP.22 §5.7.15–5.7.21) of the virtual eUICC:
 * GetProfilesInfo, Enable/Disable/Delete, SetNickname, GetEID, the configured addresses,
 * eUICCMemoryReset and GetRAT. Each handler takes the decoded command and returns the response
 * DER; malformed input gives the function's error result, never an exception.
 */
import { decode, tlv, type Tlv } from '../der/tlv.js';
import { integer, readBool, readNamedBits, readUtf8, utf8 } from '../der/types.js';
import { ES10, NOTIFICATION_EVENT, PROFILE_RESULT, PROFILE_STATE } from './es10.js';
import type { CardState, ProfileRecord } from './state.js';

/** What the ES10c handlers need from the card. */
export interface CardContext {
  readonly state: CardState;
  /** Queues the signed notifications the profile's notificationConfigurationInfo asks for. */
  notifyProfileEvent(profile: ProfileRecord, operation: number): void;
  /** Persists the state after a change. */
  changed(): void;
}

/** PprIds bit numbers. */
export const PPR = { pprUpdateControl: 0, ppr1DisableNotAllowed: 1, ppr2DeleteNotAllowed: 2 } as const;

/** ProfileInfo tags returned when the request carries no tagList. */
export const DEFAULT_PROFILE_INFO_TAGS = [0x5a, 0x4f, 0x9f70, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95];

/** Fields of ProfileInfo that are copied verbatim from the stored StoreMetadataRequest. */
const METADATA_TAGS = new Set([0x91, 0x92, 0x93, 0x94, 0x95, 0xb6, 0xb7, 0x99]);

export function findProfile(state: CardState, by: { iccidEf?: Buffer; aid?: Buffer }): ProfileRecord | undefined {
  if (by.iccidEf) {
    const h = by.iccidEf.toString('hex').toUpperCase();
    return state.profiles.find((p) => p.iccidEf === h);
  }
  if (by.aid) {
    const h = by.aid.toString('hex').toUpperCase();
    return state.profiles.find((p) => p.isdpAid === h);
  }
  return undefined;
}

/** A ProfileIdentifier CHOICE element: 5A iccid or 4F isdpAid. */
function identify(state: CardState, t: Tlv | undefined): ProfileRecord | undefined {
  if (!t) return undefined;
  if (t.tag === 0x5a && t.length === 10) return findProfile(state, { iccidEf: t.value });
  if (t.tag === 0x4f && t.length >= 5 && t.length <= 16) return findProfile(state, { aid: t.value });
  return undefined;
}

function hasPpr(p: ProfileRecord, bit: number): boolean {
  return p.profilePolicyRules?.includes(bit) ?? false;
}

function result(tag: number, code: number): Buffer {
  return tlv(tag, integer(code, 0x80));
}

/** Reads a tagList (`5C`) value: a concatenation of BER tags (multi-byte when the low bits are 1F). */
export function parseTagList(v: Buffer): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < v.length) {
    let tag = v[i++]!;
    if ((tag & 0x1f) === 0x1f) {
      let more = true;
      while (more && i < v.length) {
        const b = v[i++]!;
        tag = tag * 256 + b;
        more = (b & 0x80) !== 0;
      }
    }
    out.push(tag);
  }
  return out;
}

/** One ProfileInfo (`E3`) with the requested tags, in the ASN.1 order. */
export function encodeProfileInfo(p: ProfileRecord, tags: number[]): Buffer {
  const want = new Set(tags);
  const meta = new Map<number, Buffer>();
  try {
    for (const c of decodeMetadataChildren(p.metadata)) if (METADATA_TAGS.has(c.tag) && !meta.has(c.tag)) meta.set(c.tag, c.raw);
  } catch {
    /* stored metadata was validated at install time; an unreadable copy just yields fewer fields */
  }
  const parts: Buffer[] = [];
  const add = (tag: number, b: Buffer | undefined) => {
    if (want.has(tag) && b) parts.push(b);
  };
  add(0x5a, tlv(0x5a, Buffer.from(p.iccidEf, 'hex')));
  add(0x4f, tlv(0x4f, Buffer.from(p.isdpAid, 'hex')));
  add(0x9f70, integer(p.state === 'enabled' ? PROFILE_STATE.enabled : PROFILE_STATE.disabled, 0x9f70));
  add(0x90, p.nickname !== undefined ? utf8(p.nickname, 0x90) : undefined);
  for (const tag of [0x91, 0x92, 0x93, 0x94]) add(tag, meta.get(tag));
  // profileClass: DEFAULT operational in the metadata; a card reports it explicitly.
  add(0x95, meta.get(0x95) ?? integer(p.profileClass, 0x95));
  for (const tag of [0xb6, 0xb7]) add(tag, meta.get(tag));
  add(0x99, meta.get(0x99));
  return tlv(0xe3, ...parts);
}

function decodeMetadataChildren(hex: string): Tlv[] {
  return decode(Buffer.from(hex, 'hex')).children();
}

/** GetProfilesInfo (`BF2D`): ProfileInfoListResponse `BF2D { A0 { E3 … } }` or `BF2D { 81 error }`. */
export function getProfilesInfo(ctx: CardContext, cmd: Tlv): Buffer {
  const tag = ES10.GetProfilesInfo;
  try {
    let tags = DEFAULT_PROFILE_INFO_TAGS;
    const tl = cmd.find(0x5c);
    if (tl) tags = parseTagList(tl.value);
    let list = ctx.state.profiles;
    const sc = cmd.find(0xa0);
    if (sc) {
      const c = sc.children()[0];
      if (!c) return tlv(tag, integer(1, 0x81));
      if (c.tag === 0x5a || c.tag === 0x4f) {
        const p = identify(ctx.state, c);
        list = p ? [p] : [];
      } else if (c.tag === 0x95) {
        const cls = c.value.length === 1 ? c.value[0]! : -1;
        list = list.filter((p) => p.profileClass === cls);
      } else return tlv(tag, integer(1, 0x81)); // incorrectInputValues
    }
    return tlv(tag, tlv(0xa0, ...list.map((p) => encodeProfileInfo(p, tags))));
  } catch {
    return tlv(tag, integer(1, 0x81));
  }
}

function enabledProfile(state: CardState): ProfileRecord | undefined {
  return state.profiles.find((p) => p.state === 'enabled');
}

/** EnableProfile (`BF31 { A0 { 5A | 4F } 81 refreshFlag }`) → `BF31 { 80 enableResult }`. */
export function enableProfile(ctx: CardContext, cmd: Tlv): Buffer {
  const tag = ES10.EnableProfile;
  let target: ProfileRecord | undefined;
  try {
    const id = cmd.find(0xa0);
    const rf = cmd.find(0x81);
    if (!id || !rf) return result(tag, PROFILE_RESULT.undefinedError);
    readBool(rf);
    target = identify(ctx.state, id.children()[0]);
  } catch {
    return result(tag, PROFILE_RESULT.undefinedError);
  }
  if (!target) return result(tag, PROFILE_RESULT.iccidOrAidNotFound);
  if (target.state !== 'disabled') return result(tag, PROFILE_RESULT.wrongState);
  const current = enabledProfile(ctx.state);
  if (current && hasPpr(current, PPR.ppr1DisableNotAllowed)) return result(tag, PROFILE_RESULT.disallowedByPolicy);
  if (current) {
    current.state = 'disabled';
    ctx.notifyProfileEvent(current, NOTIFICATION_EVENT.disable);
  }
  target.state = 'enabled';
  ctx.notifyProfileEvent(target, NOTIFICATION_EVENT.enable);
  ctx.changed();
  return result(tag, PROFILE_RESULT.ok);
}

/** DisableProfile (`BF32 { A0 { 5A | 4F } 81 refreshFlag }`) → `BF32 { 80 disableResult }`. */
export function disableProfile(ctx: CardContext, cmd: Tlv): Buffer {
  const tag = ES10.DisableProfile;
  let target: ProfileRecord | undefined;
  try {
    const id = cmd.find(0xa0);
    const rf = cmd.find(0x81);
    if (!id || !rf) return result(tag, PROFILE_RESULT.undefinedError);
    readBool(rf);
    target = identify(ctx.state, id.children()[0]);
  } catch {
    return result(tag, PROFILE_RESULT.undefinedError);
  }
  if (!target) return result(tag, PROFILE_RESULT.iccidOrAidNotFound);
  if (target.state !== 'enabled') return result(tag, PROFILE_RESULT.wrongState);
  if (hasPpr(target, PPR.ppr1DisableNotAllowed)) return result(tag, PROFILE_RESULT.disallowedByPolicy);
  target.state = 'disabled';
  ctx.notifyProfileEvent(target, NOTIFICATION_EVENT.disable);
  ctx.changed();
  return result(tag, PROFILE_RESULT.ok);
}

/** DeleteProfile (`BF33 { 5A | 4F }`) → `BF33 { 80 deleteResult }`. */
export function deleteProfile(ctx: CardContext, cmd: Tlv): Buffer {
  const tag = ES10.DeleteProfile;
  let target: ProfileRecord | undefined;
  try {
    const id = cmd.children()[0];
    if (!id || (id.tag !== 0x5a && id.tag !== 0x4f)) return result(tag, PROFILE_RESULT.undefinedError);
    target = identify(ctx.state, id);
  } catch {
    return result(tag, PROFILE_RESULT.undefinedError);
  }
  if (!target) return result(tag, PROFILE_RESULT.iccidOrAidNotFound);
  if (target.state !== 'disabled') return result(tag, PROFILE_RESULT.wrongState);
  if (hasPpr(target, PPR.ppr2DeleteNotAllowed)) return result(tag, PROFILE_RESULT.disallowedByPolicy);
  ctx.state.profiles = ctx.state.profiles.filter((p) => p !== target);
  ctx.notifyProfileEvent(target, NOTIFICATION_EVENT.delete);
  ctx.changed();
  return result(tag, PROFILE_RESULT.ok);
}

/** SetNickname (`BF29 { 5A iccid 90 nickname }`) → `BF29 { 80 result }` (ok 0, iccidNotFound 1, undefinedError 127). */
export function setNickname(ctx: CardContext, cmd: Tlv): Buffer {
  const tag = ES10.SetNickname;
  try {
    const iccid = cmd.find(0x5a);
    const nick = cmd.find(0x90);
    if (!iccid || !nick || iccid.length !== 10) return result(tag, 127);
    const name = readUtf8(nick);
    if (Buffer.byteLength(name, 'utf8') > 64) return result(tag, 127);
    const p = findProfile(ctx.state, { iccidEf: iccid.value });
    if (!p) return result(tag, 1);
    if (name === '') delete p.nickname;
    else p.nickname = name;
    ctx.changed();
    return result(tag, 0);
  } catch {
    return result(tag, 127);
  }
}

/** GetEID (`BF3E { 5C 01 5A }`) → `BF3E { 5A 10 EID }`. */
export function getEid(ctx: CardContext): Buffer {
  return tlv(ES10.GetEid, tlv(0x5a, Buffer.from(ctx.state.eid, 'hex')));
}

/** EuiccConfiguredAddresses (`BF3C`) → `BF3C { 80 defaultDpAddress? 81 rootDsAddress }`. */
export function getConfiguredAddresses(ctx: CardContext): Buffer {
  const s = ctx.state;
  return tlv(ES10.GetEuiccConfiguredAddresses, s.defaultDpAddress ? utf8(s.defaultDpAddress, 0x80) : undefined, utf8(s.rootDsAddress, 0x81));
}

/** SetDefaultDpAddress (`BF3F { 80 address }`) → `BF3F { 80 result }` (ok 0, undefinedError 127). */
export function setDefaultDpAddress(ctx: CardContext, cmd: Tlv): Buffer {
  const tag = ES10.SetDefaultDpAddress;
  try {
    const a = cmd.find(0x80);
    if (!a) return result(tag, 127);
    const addr = readUtf8(a);
    if (addr === '') delete ctx.state.defaultDpAddress;
    else ctx.state.defaultDpAddress = addr;
    ctx.changed();
    return result(tag, 0);
  } catch {
    return result(tag, 127);
  }
}

/**
 * eUICCMemoryReset (`BF34 { 82 resetOptions }`: bit 0 deleteOperationalProfiles, 1
 * deleteFieldLoadedTestProfiles, 2 resetDefaultSmdpAddress) → `BF34 { 80 result }` (ok 0,
 * nothingToDelete 1, undefinedError 127). No notifications are generated.
 */
export function memoryReset(ctx: CardContext, cmd: Tlv): Buffer {
  const tag = ES10.EuiccMemoryReset;
  let bits: number[];
  try {
    const o = cmd.find(0x82);
    if (!o) return result(tag, 127);
    bits = readNamedBits(o);
  } catch {
    return result(tag, 127);
  }
  const s = ctx.state;
  const before = s.profiles.length;
  const drop = (p: ProfileRecord) => (bits.includes(0) && p.profileClass === 2) || (bits.includes(1) && p.profileClass === 0);
  s.profiles = s.profiles.filter((p) => !drop(p));
  let changed = s.profiles.length !== before;
  if (bits.includes(2) && s.defaultDpAddress !== undefined) {
    delete s.defaultDpAddress;
    changed = true;
  }
  if (!changed) return result(tag, 1);
  ctx.changed();
  return result(tag, 0);
}

/** GetRAT (`BF43`) → `BF43 { A0 { } }`: an empty Rules Authorisation Table (no PPR is authorised). */
export function getRat(): Buffer {
  return tlv(ES10.GetRat, tlv(0xa0));
}

