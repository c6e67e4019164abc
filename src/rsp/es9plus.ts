/**
 * The ES9+ interface (SGP.22 §6.5): the path prefix of its functions and their names, shared by the
 * server's routes and the LPA simulator.
 */

/** Every ES9+ function is `POST <prefix>/<function>` (SGP.22 §6.5). */
export const ES9_PREFIX = '/gsma/rsp2/es9plus';

/** The ES9+ functions, in the order of a download (handleNotification and cancelSession after). */
export const ES9_FUNCTIONS = ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage', 'handleNotification', 'cancelSession'] as const;
export type Es9Function = (typeof ES9_FUNCTIONS)[number];
