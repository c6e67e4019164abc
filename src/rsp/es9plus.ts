/**
 * The ES9+ interface (SGP.22 §6.5): the path prefix of its functions and their names, shared by the
 * server's routes and the LPA simulator.
 */

/** Every ES9+ function is `POST <prefix>/<function>` (SGP.22 §6.5). */
export const ES9_PREFIX = '/gsma/rsp2/es9plus';

/**
 * ES11 (LPA → SM-DS) has the same two authentication functions under a prefix of its own
 * (docs/smds.md#es11; unverified against the spec text). lpac posts them to ES9_PREFIX instead.
 */
export const ES11_PREFIX = '/gsma/rsp2/es11';

/** The ES9+ functions, in the order of a download (handleNotification and cancelSession after). */
export const ES9_FUNCTIONS = ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage', 'handleNotification', 'cancelSession'] as const;
export type Es9Function = (typeof ES9_FUNCTIONS)[number];
