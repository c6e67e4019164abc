/**
 * The SM-DP+ side of ES12 (docs/smds.md#es12): RegisterEvent and DeleteEvent sent over HTTP(S) to
 * the SM-DS an order names, the built-in one included, exactly as to an external SM-DS. Over HTTPS
 * this SM-DP+ presents its client certificate (mutual TLS, SGP.22 §2.6: CERT.DP.TLS, or
 * ES12_CLIENT_CERT/KEY). The built-in SM-DS is reached on this server's own listening socket; any
 * other address over HTTPS on its host[:port], trusting the system roots, this PKI's CIs and ES12_SMDS_CA.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import tls, { type TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { addressHost, smdsAddressOf, type Config } from '../config.js';
import { FunctionFailed, SC, type StatusCode } from '../errors.js';
import type { ServerPki } from '../pki/load.js';
import { ES12_PREFIX } from './es12.js';
import { ownEs12Key, ownRequester } from './es12-auth.js';
import { es12ClientTls, es12SmdsCas } from './es12-tls.js';

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

/** One SM-DS's connection settings: where to connect, and the TLS of ES12 (docs/smds.md#es12-authentication). */
interface Es12Target {
  base: URL;
  agent: http.Agent;
  /** The only server certificates accepted (this server's own socket), checked on each new connection. */
  pinned?: Buffer[];
}

/** Ends a TLS connection whose server certificate is not one of `pinned`. */
function pin(socket: TLSSocket, pinned: Buffer[]): void {
  const check = () => {
    const raw = socket.getPeerCertificate()?.raw;
    if (!raw || !pinned.some((p) => p.equals(raw))) socket.destroy(new Error("the built-in SM-DS's address answered with a TLS certificate that is not this server's"));
  };
  if (socket.getPeerCertificate?.()?.raw) check();
  else socket.once('secureConnect', check);
}

/** Sets up the app's ES12 caller (src/smds/routes.ts); closed with the app. */
export function installEs12Caller(app: FastifyInstance, config: Config, pki: ServerPki): Es12Caller {
  const key = ownEs12Key(pki);
  const requester = ownRequester(pki);
  // Read once at start: a bad file stops the server with one line (ConfigError).
  const clientTls = es12ClientTls(config, pki);
  const smdsCas = es12SmdsCas(config);
  const cis = pki.cis.map((x) => x.toPem());
  const targets = new Map<string, Es12Target>();
  const own = (address: string) => address.toLowerCase() === smdsAddressOf(config).toLowerCase();
  const clientCert = clientTls ? { cert: clientTls.certPem, key: clientTls.keyPem } : {};

  const targetFor = (address: string): Es12Target => {
    const k = own(address) ? '' : address.toLowerCase();
    let c = targets.get(k);
    if (c) return c;
    if (own(address)) {
      const a = app.server.address();
      if (!a || typeof a === 'string') throw new FunctionFailed(SC.smdsInaccessible, 'the built-in SM-DS is not listening yet');
      const host = a.family === 'IPv6' ? (a.address === '::' ? '[::1]' : `[${a.address}]`) : (a.address === '0.0.0.0' ? '127.0.0.1' : a.address);
      // The SM-DS's host name as SNI: the listener then presents CERT.DS.TLS when it has its own name.
      // Our own socket presents one of our own TLS certificates: those bytes are checked (`pinned`)
      // instead of a chain, so an expired one (the SGP.26 set's CERT.DP.TLS) does not stop us.
      const servername = addressHost(smdsAddressOf(config));
      c = {
        base: new URL(`${config.tls ? 'https' : 'http'}://${host}:${a.port}`),
        agent: config.tls
          ? new https.Agent({ keepAlive: true, servername, rejectUnauthorized: false, ...clientCert })
          : new http.Agent({ keepAlive: true }),
        ...(config.tls ? { pinned: [pki.tls?.cert.raw, pki.dsTls?.cert.raw].filter((x): x is Buffer => !!x) } : {}),
      };
    } else {
      c = { base: new URL(`https://${address}`), agent: new https.Agent({ keepAlive: true, ca: [...tls.rootCertificates, ...cis, ...smdsCas], ...clientCert }) };
    }
    targets.set(k, c);
    return c;
  };

  /** POST a JSON body; the answer's status and JSON. */
  const post = (target: Es12Target, path: string, body: unknown, headers: Record<string, string>) => new Promise<{ status: number; json?: any }>((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    const mod = target.base.protocol === 'https:' ? https : http;
    const req = mod.request(new URL(path, target.base), {
      method: 'POST', agent: target.agent, timeout: 10_000,
      headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...headers },
    }, (res) => {
      if (target.pinned) {
        // Checked at secureConnect (pin), and again here: no answer is taken from another certificate.
        const raw = (res.socket as TLSSocket).getPeerCertificate?.()?.raw;
        if (!raw || !target.pinned.some((p) => p.equals(raw))) { res.destroy(); reject(new Error('unexpected TLS certificate')); return; }
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = /json/.test(String(res.headers['content-type'])) ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    if (target.pinned) req.on('socket', (socket) => pin(socket as TLSSocket, target.pinned!));
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(payload);
  });

  const call = async (smdsAddress: string, fn: string, body: Record<string, unknown>): Promise<Es12Result> => {
    const target = targetFor(smdsAddress);
    let r;
    try {
      // Over TLS the client certificate authenticates this SM-DP+; the key only on plain HTTP (docs/smds.md#es12-authentication).
      r = await post(target, `${ES12_PREFIX}/${fn}`,
        { header: { functionRequesterIdentifier: requester, functionCallIdentifier: randomUUID() }, ...body },
        { 'x-admin-protocol': 'gsma/rsp/v2.5.0', ...(target.base.protocol === 'http:' ? { 'x-api-key': key } : {}) });
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
    close: () => { for (const c of targets.values()) c.agent.destroy(); targets.clear(); },
  };
  callers.set(config, caller);
  app.addHook('onClose', async () => caller.close());
  return caller;
}
