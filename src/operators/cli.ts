/** `mock-smdp operator …`: ES2+ callers, through the running server's admin API (src/cli.ts passes its client in). */
import { parseArgs } from 'node:util';
import type { HttpClient } from '../http/client.js';

export const OPERATOR_USAGE = `  mock-smdp operator create --id ID --name NAME [--callback URL] [--cc-max N] [--download-max N] [--order-ttl SEC] [--cert-sha256 HEX] [--no-key]
  mock-smdp operator list`;

export async function operatorCommand(argv: string[], client: HttpClient, headers: Record<string, string>): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      id: { type: 'string' }, name: { type: 'string' }, callback: { type: 'string' }, 'cc-max': { type: 'string' },
      'download-max': { type: 'string' }, 'order-ttl': { type: 'string' }, 'cert-sha256': { type: 'string' },
      'no-key': { type: 'boolean' }, json: { type: 'boolean' },
    },
  });
  if (positionals[0] === 'create' && values.id && values.name) {
    const body: Record<string, unknown> = { id: values.id, name: values.name };
    if (values.callback) body.callbackUrl = values.callback;
    if (values['cc-max']) body.ccMaxAttempts = Number(values['cc-max']);
    if (values['download-max']) body.maxDownloadAttempts = Number(values['download-max']);
    if (values['order-ttl']) body.orderTtlSeconds = Number(values['order-ttl']);
    if (values['cert-sha256']) body.clientCertSha256 = values['cert-sha256'];
    if (values['no-key']) body.apiKey = false;
    const r = await client.post<{ id?: string; apiKey?: string; message?: string }>('/admin/operators', body, headers);
    if (r.status !== 201) {
      console.error(`operator not created (HTTP ${r.status}): ${r.json?.message ?? r.text}`);
      return 1;
    }
    if (values.json) console.log(JSON.stringify(r.json, null, 2));
    else {
      console.log(`operator ${r.json!.id} created`);
      if (r.json!.apiKey) console.log(`API key (shown once; send as X-API-Key): ${r.json!.apiKey}`);
    }
    return 0;
  }
  if (positionals[0] === 'list') {
    const r = await client.get('/admin/operators', headers);
    console.log(JSON.stringify(r.json ?? r.text, null, 2));
    return r.status === 200 ? 0 : 1;
  }
  console.error(`usage:\n${OPERATOR_USAGE}`);
  return 2;
}
