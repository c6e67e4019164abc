/**
 * The SM-DP+ side of ES12 (docs/smds.md#es12): RegisterEvent and DeleteEvent sent over HTTP(S) to
 * the SM-DS an order names, the built-in one included, exactly as to an external SM-DS. The built-in
 * SM-DS is reached on this server's own listening socket; any other address over HTTPS on its
 * host[:port], trusting the system roots and this PKI's CIs.
 */
import { randomUUID } from 'node:crypto';
import tls from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { addressHost, smdsAddressOf, type Config } from '../config.js';
import { FunctionFailed, SC, type StatusCode } from '../errors.js';
import { HttpClient } from '../http/client.js';
import type { ServerPki } from '../pki/load.js';
import { ES12_PREFIX } from './es12.js';
import { ownEs12Key, ownRequester } from './es12-auth.js';

export const SMDS_ERROR: StatusCode = { subjectCode: '8.9', reasonCode: '4.2', message: 'SM-DS execution error' };

/** What the SM-DS answered: success, or its status (subject/reason) as received. */
export type Es12Result = { ok: true } | { ok: false; status: StatusCode };

export interface Es12Caller {
  registerEvent(smdsAddress: string, e: { eid: string; eventId: string }): Promise<Es12Result>;
  deleteEvent(smdsAddress: string, e: { eid: string; eventId: string }): Promise<Es12Result>;
  close(): void;
}

/** The ES12 caller of each running app, by its Config object (the ES2+ functions get the config). */
const callers = new WeakMap<Config, Es12Caller>();

export function es12CallerFor(config: Config): Es12Caller | undefined {
  return callers.get(config);
}

/** Sets up the app's ES12 caller (src/smds/routes.ts); closed with the app. */
export function installEs12Caller(app: FastifyInstance, config: Config, pki: ServerPki): Es12Caller {
  const key = ownEs12Key(pki);
  const requester = ownRequester(pki);
  const clients = new Map<string, HttpClient>();
  const own = (address: string) => address.toLowerCase() === smdsAddressOf(config).toLowerCase();

  const clientFor = (address: string): HttpClient => {
    const k = own(address) ? '' : address.toLowerCase();
    let c = clients.get(k);
    if (c) return c;
    if (own(address)) {
      const a = app.server.address();
      if (!a || typeof a === 'string') throw new FunctionFailed(SC.smdsInaccessible, 'the built-in SM-DS is not listening yet');
      const host = a.family === 'IPv6' ? (a.address === '::' ? '[::1]' : `[${a.address}]`) : (a.address === '0.0.0.0' ? '127.0.0.1' : a.address);
      c = new HttpClient({ baseUrl: `${config.tls ? 'https' : 'http'}://${host}:${a.port}`, ca: pki.cis.map((x) => x.toPem()), servername: addressHost(config.smdpAddress), timeoutMs: 10_000 });
    } else {
      c = new HttpClient({ baseUrl: `https://${address}`, ca: [...tls.rootCertificates, ...pki.cis.map((x) => x.toPem())], timeoutMs: 10_000 });
    }
    clients.set(k, c);
    return c;
  };

  const call = async (smdsAddress: string, fn: string, body: Record<string, unknown>): Promise<Es12Result> => {
    const c = clientFor(smdsAddress);
    let r;
    try {
      r = await c.request<{ header?: { functionExecutionStatus?: { status?: string; statusCodeData?: StatusCode } } }>('POST', `${ES12_PREFIX}/${fn}`,
        { header: { functionRequesterIdentifier: requester, functionCallIdentifier: randomUUID() }, ...body },
        { 'x-admin-protocol': 'gsma/rsp/v2.5.0', 'x-api-key': key });
    } catch (err) {
      throw new FunctionFailed(SC.smdsInaccessible, `SM-DS ${smdsAddress} unreachable: ${(err as Error).message}`);
    }
    const st = r.json?.header?.functionExecutionStatus;
    if (r.status !== 200 || !st?.status) throw new FunctionFailed(SMDS_ERROR, `SM-DS ${smdsAddress} answered HTTP ${r.status} without an ES12 status`);
    if (st.status === 'Executed-Success' || st.status === 'Executed-WithWarning') return { ok: true };
    const d = st.statusCodeData;
    return { ok: false, status: { subjectCode: String(d?.subjectCode ?? '?'), reasonCode: String(d?.reasonCode ?? '?'), message: String(d?.message ?? st.status) } };
  };

  const caller: Es12Caller = {
    registerEvent: (smds, e) => call(smds, 'registerEvent', { eid: e.eid, rspServerAddress: config.smdpAddress, eventId: e.eventId, forwardingIndicator: false }),
    deleteEvent: (smds, e) => call(smds, 'deleteEvent', { eid: e.eid, eventId: e.eventId }),
    close: () => { for (const c of clients.values()) c.close(); clients.clear(); },
  };
  callers.set(config, caller);
  app.addHook('onClose', async () => caller.close());
  return caller;
}
