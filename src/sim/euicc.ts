/**
 * A virtual eUICC (SGP.22 ISD-R behind ES10): it holds an EID, eUICC + EUM certificates and key,
 * trusted CI certificates, installed profiles and pending notifications, and answers ES10 commands
 * the way a consumer eUICC does — verifying the SM-DP+ certificates and signatures, running ECKA,
 * opening every SCP03t segment of a Bound Profile Package, parsing the profile package, and
 * signing what it returns. Bad input never throws out of `transmit`: it gets the function's error
 * answer (AuthenticateServer / PrepareDownload error codes, a PIR errorResult, result codes).
 *
 * This file holds the card (creation, state, credentials) and the dispatch of ES10 commands; the
 * functions are in one module per ES10 area: es10b-session.ts (challenge, EUICCInfo,
 * AuthenticateServer, PrepareDownload, CancelSession), es10b-bpp.ts (LoadBoundProfilePackage),
 * es10b-notifications.ts (the notification list and the signed notifications) and es10c.ts (local
 * profile management).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { CurveName } from '../crypto/curves.js';
import { Certificate } from '../crypto/x509.js';
import { decode, type Tlv } from '../der/tlv.js';
import { issueEuiccCredentials, type EuiccCredentials } from '../pki/load.js';
import { CURVE_NAMES, certPath, keyPath } from '../pki/layout.js';
import { hexU, reject, type EuiccCore, type VirtualEuiccOptions } from './card.js';
import { ES10, type Es10Card } from './es10.js';
import * as es10b from './es10b-session.js';
import { bppCommand, bppPiece } from './es10b-bpp.js';
import * as notifications from './es10b-notifications.js';
import * as es10c from './es10c.js';
import {
  embedCredentials,
  loadCardState,
  loadCredentialsReference,
  loadStateCredentials,
  newCardState,
  saveCardState,
  validateCardState,
  type CardState,
  type CredentialsReference,
  type NotificationRecord,
  type ProfileRecord,
} from './state.js';

/** bppCommandId values of a PIR errorResult. */
import { BPP_COMMAND_ID as BPP_COMMAND, INSTALL_ERROR_REASON as BPP_ERROR } from '../rsp/notification.js';
import { CANCEL_SESSION_ERROR as CANCEL_ERROR } from '../rsp/cancel.js';
export { BPP_COMMAND, BPP_ERROR, CANCEL_ERROR };
export type { VirtualEuiccOptions };

export interface CreateVirtualEuiccOptions extends VirtualEuiccOptions {
  /** Credentials to use (embedded into the state). */
  credentials?: EuiccCredentials | EuiccCredentials[];
  /** A PKI folder in the SGP.26 layout. */
  pkiDir?: string;
  /**
   * With pkiDir: issue new eUICC certificates for this EID from the folder's EUM(s) (needs the EUM
   * private keys) and embed them. Without it the folder's eUICC/ credentials are referenced.
   */
  eid?: string;
  /** Curves to use from pkiDir (default: all available). */
  curves?: CurveName[];
  /** Embed credentials loaded from pkiDir instead of referencing the folder. */
  embed?: boolean;
  /** Initial default SM-DP+ address. */
  defaultDpAddress?: string;
  rootDsAddress?: string;
}

export class VirtualEuicc implements Es10Card {
  /** The state and session the ES10 area modules work on. */
  readonly #card: EuiccCore;
  readonly #ctx: es10c.CardContext;

  constructor(state: CardState, credentials: EuiccCredentials | EuiccCredentials[], opts: VirtualEuiccOptions = {}) {
    const checked = validateCardState(state);
    const creds = Array.isArray(credentials) ? [...credentials] : [credentials];
    if (!creds.length) throw new TypeError('VirtualEuicc needs eUICC credentials');
    const trusted = new Map<string, Certificate>();
    for (const c of creds) {
      if (c.eid !== state.eid) throw new TypeError(`eUICC certificate (${c.curve}) is for EID ${c.eid}, card state has ${state.eid}`);
      if (!c.eum.aki) throw new TypeError(`EUM certificate (${c.curve}) has no authority key identifier`);
      for (const ci of c.cis) if (ci.ski) trusted.set(hexU(ci.ski), ci);
    }
    for (const b64 of state.extraTrustedCis ?? []) {
      const ci = Certificate.parse(Buffer.from(b64, 'base64'));
      if (ci.ski) trusted.set(hexU(ci.ski), ci);
    }
    const card: EuiccCore = {
      state: checked,
      creds,
      trusted,
      opts,
      random: opts.random ?? randomBytes,
      changed: () => {
        if (opts.persistTo) saveCardState(opts.persistTo, checked);
        opts.onChange?.(checked);
      },
    };
    this.#card = card;
    this.#ctx = {
      state: checked,
      notifyProfileEvent: (p, op) => notifications.notifyProfileEvent(card, p, op),
      changed: card.changed,
    };
  }
  /**
   * A new card. Credentials come from `credentials`, or from `pkiDir` (issued for `eid` when given,
   * else the folder's eUICC/ certificates). With `persistTo`, the state file is written at once.
   */
  static async create(opts: CreateVirtualEuiccOptions): Promise<VirtualEuicc> {
    let creds: EuiccCredentials[];
    let ref: CredentialsReference;
    if (opts.credentials) {
      creds = Array.isArray(opts.credentials) ? opts.credentials : [opts.credentials];
      ref = { embedded: creds.map(embedCredentials) };
    } else if (opts.pkiDir) {
      const dir = opts.pkiDir;
      if (opts.eid) {
        const eid = opts.eid;
        const curves = opts.curves ?? CURVE_NAMES.filter((c) => existsSync(join(dir, certPath('eum', c))) && existsSync(join(dir, keyPath('eum', c))));
        if (!curves.length) throw new TypeError(`no EUM certificate and key in ${dir} to issue eUICC certificates with`);
        creds = curves.map((c) => issueEuiccCredentials(dir, eid, c));
        ref = { embedded: creds.map(embedCredentials) };
      } else {
        const abs = resolve(dir);
        const base = opts.persistTo ? dirname(resolve(opts.persistTo)) : process.cwd();
        creds = loadCredentialsReference({ dir: abs, ...(opts.curves ? { curves: opts.curves } : {}) });
        ref = opts.embed
          ? { embedded: creds.map(embedCredentials) }
          : { dir: opts.persistTo ? relative(base, abs) || '.' : abs, ...(opts.curves ? { curves: opts.curves } : {}) };
      }
    } else {
      throw new TypeError('VirtualEuicc.create needs credentials or pkiDir');
    }
    const eid = creds[0]!.eid;
    const state = newCardState(eid, ref, {
      ...(opts.rootDsAddress ? { rootDsAddress: opts.rootDsAddress } : {}),
      ...(opts.defaultDpAddress ? { defaultDpAddress: opts.defaultDpAddress } : {}),
    });
    const card = new VirtualEuicc(state, creds, opts);
    if (opts.persistTo) saveCardState(opts.persistTo, state);
    return card;
  }

  /** The card of a state file; changes are saved back to it. */
  static open(stateFile: string, opts: VirtualEuiccOptions = {}): VirtualEuicc {
    const state = loadCardState(stateFile);
    const creds = loadStateCredentials(state, dirname(resolve(stateFile)));
    return new VirtualEuicc(state, creds, { persistTo: stateFile, ...opts });
  }

  /** A card from `toJSON()` output; credentials from the state unless given. */
  static fromJSON(json: CardState | string, opts: VirtualEuiccOptions & { baseDir?: string; credentials?: EuiccCredentials[] } = {}): VirtualEuicc {
    const state = validateCardState(typeof json === 'string' ? JSON.parse(json) : structuredClone(json));
    const creds = opts.credentials ?? loadStateCredentials(state, opts.baseDir);
    return new VirtualEuicc(state, creds, opts);
  }

  /** A deep copy of the persistent state. */
  toJSON(): CardState {
    return structuredClone(this.#card.state);
  }

  get eid(): string {
    return this.#card.state.eid;
  }

  get profiles(): readonly ProfileRecord[] {
    return this.#card.state.profiles;
  }

  get notifications(): readonly NotificationRecord[] {
    return this.#card.state.notifications;
  }

  get credentials(): readonly EuiccCredentials[] {
    return this.#card.creds;
  }

  /** Writes the state to a file now. */
  save(file: string): void {
    saveCardState(file, this.#card.state);
  }

  /** Diagnostic of the last rejected command (not part of any ES10 answer). */
  get lastError(): string | undefined {
    return this.#card.lastError;
  }

  /** CI SKIs the card trusts (ForVerification). */
  get ciPkIdsForVerification(): Buffer[] {
    return es10b.ciPkIdsForVerification(this.#card);
  }

  /** CI SKIs under which the card holds an eUICC certificate (ForSigning). */
  get ciPkIdsForSigning(): Buffer[] {
    return es10b.ciPkIdsForSigning(this.#card);
  }

  // ------------------------------------------------------------------------------------------
  // ES10 dispatch

  async transmit(command: Buffer): Promise<Buffer> {
    return this.process(command);
  }

  /** Synchronous form of transmit. */
  process(command: Buffer): Buffer {
    const card = this.#card;
    card.lastError = undefined;
    if (!Buffer.isBuffer(command)) throw new TypeError('ES10 command must be a Buffer');
    const first = command[0];
    // BoundProfilePackage pieces: BF36 header (+BF23), A0..A3, 86, 88 (87 only inside A0/A2).
    if (command.length >= 2 && first === 0xbf && command[1] === 0x36) return bppCommand(card, command);
    if (first !== undefined && [0xa0, 0xa1, 0xa2, 0xa3, 0x86, 0x88].includes(first)) return bppPiece(card, command);
    let cmd: Tlv;
    try {
      cmd = decode(command);
      cmd.children();
    } catch (err) {
      return reject(card, `undecodable command: ${(err as Error).message}`);
    }
    switch (cmd.tag) {
      case ES10.GetEuiccChallenge:
        return es10b.getEuiccChallenge(card);
      case ES10.GetEuiccInfo1:
        return es10b.euiccInfo1(card);
      case ES10.GetEuiccInfo2:
        return es10b.euiccInfo2(card);
      case ES10.AuthenticateServer:
        return es10b.authenticateServer(card, command);
      case ES10.PrepareDownload:
        return es10b.prepareDownload(card, command);
      case ES10.CancelSession:
        return es10b.cancelSession(card, cmd);
      case ES10.ListNotification:
        return notifications.listNotification(card, cmd);
      case ES10.RetrieveNotificationsList:
        return notifications.retrieveNotifications(card, cmd);
      case ES10.RemoveNotificationFromList:
        return notifications.removeNotification(card, cmd);
      case ES10.GetProfilesInfo:
        return es10c.getProfilesInfo(this.#ctx, cmd);
      case ES10.EnableProfile:
        return es10c.enableProfile(this.#ctx, cmd);
      case ES10.DisableProfile:
        return es10c.disableProfile(this.#ctx, cmd);
      case ES10.DeleteProfile:
        return es10c.deleteProfile(this.#ctx, cmd);
      case ES10.SetNickname:
        return es10c.setNickname(this.#ctx, cmd);
      case ES10.GetEid:
        return es10c.getEid(this.#ctx);
      case ES10.GetEuiccConfiguredAddresses:
        return es10c.getConfiguredAddresses(this.#ctx);
      case ES10.SetDefaultDpAddress:
        return es10c.setDefaultDpAddress(this.#ctx, cmd);
      case ES10.EuiccMemoryReset:
        return es10c.memoryReset(this.#ctx, cmd);
      case ES10.GetRat:
        return es10c.getRat();
      default:
        return reject(card, `unsupported ES10 command ${cmd.tag.toString(16).toUpperCase()}`);
    }
  }
}
