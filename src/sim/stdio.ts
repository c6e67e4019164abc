/**
 * lpac's `stdio` APDU backend (LPAC_APDU=stdio), served by a virtual card: newline-delimited JSON.
 * lpac writes requests `{"type":"apdu","payload":{"func":…,"param":"<hex>"|null}}` and reads one answer
 * line per request, `{"type":"apdu","payload":{"ecode":N[,"data":"<hex incl. SW>"]}}`:
 *
 *   connect / disconnect          → ecode 0 (a card reset: all logical channels closed)
 *   logic_channel_open  <AID>     → ecode = channel number (MANAGE CHANNEL + SELECT done here), < 0 on failure
 *   logic_channel_close <channel> → ecode 0
 *   transmit <command APDU>       → ecode 0, data = response APDU incl. status word
 *
 * Lines of any other type (lpac's own `lpa`/`progress` output when it shares the pipe) are handed to
 * `onOther` and not answered.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { ApduFront, type ApduFrontOptions } from './apdu.js';
import type { Es10Card } from './es10.js';

export interface StdioOptions extends ApduFrontOptions {
  /** Lines that are not APDU requests (e.g. lpac's results), unparsed. */
  onOther?: (line: string) => void;
  /** Every request and answer, for tracing. */
  onExchange?: (func: string, param: string | null, answer: { ecode: number; data?: string }) => void;
}

interface ApduRequest {
  type: 'apdu';
  payload: { func: string; param?: string | null };
}

function isApduRequest(v: unknown): v is ApduRequest {
  const o = v as ApduRequest | null;
  return !!o && typeof o === 'object' && o.type === 'apdu' && !!o.payload && typeof o.payload === 'object' && typeof o.payload.func === 'string';
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

function hexParam(param: string | null | undefined): Buffer | undefined {
  if (param === null || param === undefined) return Buffer.alloc(0);
  if (!HEX_RE.test(param)) return undefined;
  return Buffer.from(param, 'hex');
}

/** Answers one request; never throws (failures become negative ecodes). */
export async function handleStdioRequest(front: ApduFront, func: string, param: string | null | undefined): Promise<{ ecode: number; data?: string }> {
  const bytes = hexParam(param);
  if (!bytes) return { ecode: -1 };
  try {
    switch (func) {
      case 'connect':
      case 'disconnect':
        front.reset();
        return { ecode: 0 };
      case 'logic_channel_open':
        return { ecode: await front.openLogicalChannel(bytes.length ? bytes : undefined) };
      case 'logic_channel_close':
        if (bytes.length !== 1) return { ecode: -1 };
        front.closeLogicalChannel(bytes[0]!);
        return { ecode: 0 };
      case 'transmit': {
        if (bytes.length < 4) return { ecode: -1 };
        const r = await front.transmit(bytes);
        return { ecode: 0, data: r.toString('hex').toUpperCase() };
      }
      default:
        return { ecode: -1 };
    }
  } catch {
    return { ecode: -1 };
  }
}

/**
 * Serves `card` on lpac's stdio protocol until `input` ends. Requests are answered strictly in
 * order, one line each.
 */
export async function serveStdio(card: Es10Card, input: Readable, output: Writable, opts: StdioOptions = {}): Promise<void> {
  const front = new ApduFront(card, opts);
  const rl = createInterface({ input, crlfDelay: Infinity, terminal: false });
  for await (const raw of rl) {
    const line = raw.trim();
    if (!line) continue;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      opts.onOther?.(raw);
      continue;
    }
    if (!isApduRequest(msg)) {
      opts.onOther?.(raw);
      continue;
    }
    const { func, param } = msg.payload;
    const answer = await handleStdioRequest(front, func, param);
    opts.onExchange?.(func, param ?? null, answer);
    const text = `${JSON.stringify({ type: 'apdu', payload: answer })}\n`;
    if (!output.write(text)) await new Promise<void>((resolve) => output.once('drain', () => resolve()));
  }
}
