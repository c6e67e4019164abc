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

/** Profile states in ProfileInfo (tag 9F70). */
export const PROFILE_STATE = { disabled: 0, enabled: 1 } as const;

/** Notification operation bit numbers (NotificationEvent). */
export const NOTIFICATION_EVENT = { install: 0, enable: 1, disable: 2, delete: 3 } as const;
