/**
 * A small JSON-over-HTTP(S) client with keep-alive, used by the CLI, the device simulator's LPA and
 * the benchmark. The URL it connects to is separate from the TLS server name it expects, so a test
 * client can reach `testsmdpplus1.example.com` at 127.0.0.1.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

export interface HttpClientOptions {
  /** Where to connect, e.g. https://127.0.0.1:8443 */
  baseUrl: string;
  /** PEM certificates to trust for the server's TLS certificate (e.g. the CI). */
  ca?: string | string[];
  /** TLS server name (SNI and certificate name check); defaults to the URL's host. */
  servername?: string;
  /** false: accept any server certificate (like lpac's curl backend). */
  verifyTls?: boolean;
  keepAlive?: boolean;
  /**
   * Every request on a new connection with, over https, a full TLS handshake (no session kept to
   * resume), as lpac's HTTP backend does. The TLS configuration is built once all the same.
   */
  freshConnections?: boolean;
  maxSockets?: number;
  timeoutMs?: number;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The response body as received. */
  body: Buffer;
  text: string;
  json?: T;
}

export class HttpClient {
  readonly base: URL;
  readonly #agent: http.Agent;
  readonly #https: boolean;

  constructor(readonly opts: HttpClientOptions) {
    this.base = new URL(opts.baseUrl);
    this.#https = this.base.protocol === 'https:';
    const common = { keepAlive: !opts.freshConnections && (opts.keepAlive ?? true), maxSockets: opts.maxSockets ?? 64 };
    this.#agent = this.#https
      ? new https.Agent({
          ...common,
          ...(opts.freshConnections
            ? { maxCachedSessions: 0, secureContext: tls.createSecureContext(opts.ca ? { ca: opts.ca } : {}) }
            : { ca: opts.ca }),
          servername: opts.servername,
          rejectUnauthorized: opts.verifyTls ?? true,
          ...(opts.servername
            ? { checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(opts.servername!, cert) }
            : {}),
        })
      : new http.Agent(common);
  }

  request<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResponse<T>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const url = new URL(path, this.base);
    const mod = this.#https ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          agent: this.#agent,
          headers: {
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
            ...headers,
          },
          timeout: this.opts.timeoutMs ?? 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(chunks);
            const text = raw.toString('utf8');
            let json: T | undefined;
            if (text && /json/.test(String(res.headers['content-type']))) {
              try {
                json = JSON.parse(text) as T;
              } catch {
                json = undefined;
              }
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: raw, text, json });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  post<T = unknown>(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request<T>('POST', path, body, headers);
  }

  get<T = unknown>(path: string, headers?: Record<string, string>) {
    return this.request<T>('GET', path, undefined, headers);
  }

  close(): void {
    this.#agent.destroy();
  }
}
