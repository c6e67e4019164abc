/**
 * The one catalogue of SGP.22 function execution statuses (subjectCode / reasonCode), used by ES9+
 * and ES2+ alike. A check fails by throwing `FunctionFailed` with an entry of `SC`; the route renders
 * it into `header.functionExecutionStatus`.
 */

export interface StatusCode {
  readonly subjectCode: string;
  readonly reasonCode: string;
  /** Default human-readable text, shown by LPAs such as lpac. */
  readonly message: string;
}

const sc = (subjectCode: string, reasonCode: string, message: string): StatusCode => ({ subjectCode, reasonCode, message });

export const SC = {
  // Generic protocol errors (no SGP.22 function answer fits better).
  formatInvalid: sc('1.3.1', '2.1', 'Invalid request format'),
  formatMissing: sc('1.3.1', '2.2', 'Mandatory element missing'),
  protocolVersionUnsupported: sc('1.3.2', '3.1', 'Unsupported protocol version'),
  requesterUnknown: sc('1.1', '1.1', 'Function requester unknown'),
  requesterNotAllowed: sc('1.1', '1.2', 'Function requester not allowed'),
  providerError: sc('1.2', '4.2', 'Function provider execution error'),

  // ES9+ initiateAuthentication
  smdpAddressRefused: sc('8.8.1', '3.8', 'SM-DP+ address refused'),
  securityConfigUnsupported: sc('8.8.2', '3.1', 'None of the proposed Public Key Identifiers is supported'),
  svnUnsupported: sc('8.8.3', '3.1', 'Specification version number unsupported'),
  dpCertificateUnavailable: sc('8.8.4', '3.7', 'No SM-DP+ certificate chains to a CI trusted by the eUICC'),
  euiccChallengeInvalid: sc('8.1', '2.1', 'euiccChallenge must be 16 bytes'),

  // ES9+ session and authentication
  transactionUnknown: sc('8.10.1', '3.9', 'Unknown transactionId'),
  ciPkUnknown: sc('8.11.1', '3.9', 'EUM certificate not issued by the CI selected for this session'),
  eumCertificateInvalid: sc('8.1.2', '6.1', 'EUM certificate verification failed'),
  eumCertificateExpired: sc('8.1.2', '6.3', 'EUM certificate expired'),
  euiccCertificateInvalid: sc('8.1.3', '6.1', 'eUICC certificate verification failed'),
  euiccCertificateExpired: sc('8.1.3', '6.3', 'eUICC certificate expired'),
  euiccVerificationFailed: sc('8.1', '6.1', 'eUICC signature or challenge verification failed'),
  euiccInsufficientMemory: sc('8.1', '4.8', 'Insufficient eUICC memory'),
  matchingIdRefused: sc('8.2.6', '3.8', 'MatchingID refused'),
  eidRefused: sc('8.1.1', '3.8', 'EID refused'),
  profileNotReleased: sc('8.2', '1.2', 'Profile not released for download'),
  profileAlreadyUsed: sc('8.2.1', '3.3', 'Profile already downloaded or installed'),
  profileTypeNotEligible: sc('8.2.5', '4.3', 'No eligible profile for this eUICC or device'),
  orderExpired: sc('8.8.5', '4.10', 'Download order expired'),
  downloadRetryLimit: sc('8.8.5', '6.4', 'Maximum number of download attempts exceeded'),

  // ES9+ getBoundProfilePackage
  confirmationCodeMissing: sc('8.2.7', '2.2', 'Confirmation code required'),
  confirmationCodeRefused: sc('8.2.7', '3.8', 'Confirmation code refused'),
  confirmationCodeRetryLimit: sc('8.2.7', '6.4', 'Maximum number of confirmation code attempts exceeded'),
  rebindingRefused: sc('8.2', '3.7', 'Bound profile package not available for a new binding'),
  downloadErrorReported: sc('8.1', '6.1', 'PrepareDownload failed on the eUICC'),

  // ES9+ cancelSession
  smdpOidMismatch: sc('8.8', '3.10', 'smdpOid does not match the SM-DP+ certificate'),

  // ES2+ (operator functions, SGP.22 §5.3; docs/protocol.md#es2-functions-and-callbacks)
  iccidInvalid: sc('8.2.1', '2.1', 'Invalid ICCID'),
  iccidMissing: sc('8.2.1', '2.2', 'ICCID or finalProfileStatusIndicator missing'),
  iccidUnknown: sc('8.2.1', '3.9', 'Unknown ICCID'),
  iccidNotAllowed: sc('8.2.1', '1.2', 'Profile not owned by the function requester'),
  iccidEidMismatch: sc('8.2.1', '3.10', 'Profile bound to a different EID'),
  invalidTransition: sc('8.2.1', '3.5', 'Invalid profile state transition'),
  profileTypeMissing: sc('8.2.5', '2.3', 'profileType required when no ICCID is given'),
  profileTypeUnknown: sc('8.2.5', '3.9', 'Unknown profile type'),
  profileTypeNotAllowed: sc('8.2.5', '1.2', 'Profile type not allowed for the function requester'),
  profileTypeExhausted: sc('8.2.5', '3.7', 'No more profiles available of this profile type'),
  profileTypeMismatch: sc('8.2.5', '3.8', 'Profile type does not match the ICCID'),
  eidInvalid: sc('8.1.1', '2.1', 'Invalid EID'),
  eidRequired: sc('8.1.1', '2.2', 'EID required'),
  eidMismatch: sc('8.1.1', '3.10', 'EID does not match the order'),
  matchingIdInvalid: sc('8.2.6', '2.1', 'Invalid MatchingID'),
  matchingIdInUse: sc('8.2.6', '3.3', 'MatchingID already in use'),
  matchingIdMismatch: sc('8.2.6', '3.10', 'MatchingID does not match the order'),
  smdsInaccessible: sc('8.9', '5.1', 'SM-DS inaccessible'),
} as const satisfies Record<string, StatusCode>;

export type StatusName = keyof typeof SC;

export class FunctionFailed extends Error {
  override name = 'FunctionFailed';
  constructor(
    readonly status: StatusCode,
    message?: string,
  ) {
    super(message ?? status.message);
  }
}

/** Throws `FunctionFailed` with `status` unless `condition` holds. */
export function check(condition: unknown, status: StatusCode, message?: string): asserts condition {
  if (!condition) throw new FunctionFailed(status, message);
}

export interface FunctionExecutionStatus {
  status: 'Executed-Success' | 'Executed-WithWarning' | 'Failed' | 'Expired';
  statusCodeData?: { subjectCode: string; reasonCode: string; subjectIdentifier?: string; message?: string };
}

export function successHeader(): { functionExecutionStatus: FunctionExecutionStatus } {
  return { functionExecutionStatus: { status: 'Executed-Success' } };
}

export function failedHeader(err: FunctionFailed): { functionExecutionStatus: FunctionExecutionStatus } {
  return {
    functionExecutionStatus: {
      status: 'Failed',
      statusCodeData: { subjectCode: err.status.subjectCode, reasonCode: err.status.reasonCode, message: err.message },
    },
  };
}
