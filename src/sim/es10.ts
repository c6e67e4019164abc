/**
 * ES10 (LPA <-> eUICC) interface shared by the virtual eUICC and the LPA simulator.
 *
 * A card takes one whole ES10 command (a DER TLV such as BF2E00, BF3800.., or one of the
 * pieces a LoadBoundProfilePackage is split into) and returns its DER response. An empty
 * Buffer means "nothing to return" (e.g. an intermediate BPP piece).
 */
export interface Es10Card {
  transmit(command: Buffer): Promise<Buffer>;
}

/** ES10 command / response tags (two-byte constructed context tags, as numbers). */
export const ES10 = {
  // ES10a
  GetEuiccConfiguredAddresses: 0xbf3c,
  SetDefaultDpAddress: 0xbf3f,
  // ES10b
  PrepareDownload: 0xbf21,
  LoadBoundProfilePackage: 0xbf36,
  InitialiseSecureChannel: 0xbf23,
  ProfileInstallationResult: 0xbf37,
  ProfileInstallationResultData: 0xbf27,
  GetEuiccChallenge: 0xbf2e,
  GetEuiccInfo1: 0xbf20,
  GetEuiccInfo2: 0xbf22,
  ListNotification: 0xbf28,
  RetrieveNotificationsList: 0xbf2b,
  RemoveNotificationFromList: 0xbf30,
  AuthenticateServer: 0xbf38,
  CancelSession: 0xbf41,
  LoadCrl: 0xbf35,
  NotificationMetadata: 0xbf2f,
  // ES10c
  GetProfilesInfo: 0xbf2d,
  EnableProfile: 0xbf31,
  DisableProfile: 0xbf32,
  DeleteProfile: 0xbf33,
  EuiccMemoryReset: 0xbf34,
  GetEid: 0xbf3e,
  SetNickname: 0xbf29,
  GetRat: 0xbf43,
} as const;

export type Es10Tag = (typeof ES10)[keyof typeof ES10];

/** Result codes shared by Enable / Disable / Delete (SGP.22 §5.7.16–5.7.18), for the card and the LPA. */
export const PROFILE_RESULT = {
  ok: 0,
  iccidOrAidNotFound: 1,
  /** Enable and Delete: profileNotInDisabledState; Disable: profileNotInEnabledState. */
  wrongState: 2,
  disallowedByPolicy: 3,
  wrongProfileReenabling: 4,
  catBusy: 5,
  undefinedError: 127,
} as const;

export type ProfileOperation = 'EnableProfile' | 'DisableProfile' | 'DeleteProfile';

/** The codes each function can answer (SGP.22 §5.7.16–5.7.18). */
const RESULTS_OF: Record<ProfileOperation, ReadonlyArray<keyof typeof PROFILE_RESULT>> = {
  EnableProfile: ['ok', 'iccidOrAidNotFound', 'wrongState', 'disallowedByPolicy', 'wrongProfileReenabling', 'catBusy', 'undefinedError'],
  DisableProfile: ['ok', 'iccidOrAidNotFound', 'wrongState', 'disallowedByPolicy', 'catBusy', 'undefinedError'],
  DeleteProfile: ['ok', 'iccidOrAidNotFound', 'wrongState', 'disallowedByPolicy', 'undefinedError'],
};

/** SGP.22's name of a result code of `fn` (`profileNotInDisabledState`, …), or undefined for a code it does not define. */
export function profileResultName(fn: ProfileOperation, code: number): string | undefined {
  const name = RESULTS_OF[fn].find((k) => PROFILE_RESULT[k] === code);
  if (name !== 'wrongState') return name;
  return fn === 'DisableProfile' ? 'profileNotInEnabledState' : 'profileNotInDisabledState';
}

/** Profile states in ProfileInfo (tag 9F70). */
export const PROFILE_STATE = { disabled: 0, enabled: 1 } as const;

/** Notification operation bit numbers (NotificationEvent), defined in src/rsp/notification.ts. */
export { NOTIFICATION_EVENT } from '../rsp/notification.js';
