/**
 * ISO/IEC 7816-4 framing for ES10 (SGP.22 §5.7 over GlobalPlatform STORE DATA), both ways:
 *
 * - `ApduFront` is the card side: it puts any `Es10Card` behind the APDU interface a real eUICC
 *   offers an LPA such as lpac — MANAGE CHANNEL, SELECT of the ISD-R on a logical channel, STORE
 *   DATA blocks (`80 E2 P1 P2`, P1 11 = more / 91 = last, P2 = block number) reassembled into one
 *   ES10 command, long answers handed out in 256-byte pieces with `61xx` and GET RESPONSE.
 * - `ApduCard` is the LPA side: an `Es10Card` that splits every ES10 command into STORE DATA blocks
 *   (at most 120 bytes by default, like lpac) and collects `61xx` answers, over any `ApduTransport`.
 *
 * `new ApduCard(new ApduFront(card))` therefore behaves like `card`, through real APDUs.
 */
import type { Es10Card } from './es10.js';

/** ISD-R application identifier (SGP.02/SGP.22). */
export const ISD_R_AID = Buffer.from('A0000005591010FFFFFFFF8900000100', 'hex');

/** Status words used here. */
export const SW = {
  OK: 0x9000,
  WRONG_LENGTH: 0x6700,
  LOGICAL_CHANNEL_NOT_SUPPORTED: 0x6881,
  SECURE_MESSAGING_NOT_SUPPORTED: 0x6882,
  CONDITIONS_NOT_SATISFIED: 0x6985,
  WRONG_DATA: 0x6a80,
  FUNCTION_NOT_SUPPORTED: 0x6a81,
  FILE_NOT_FOUND: 0x6a82,
  INCORRECT_P1P2: 0x6a86,
  INS_NOT_SUPPORTED: 0x6d00,
  CLA_NOT_SUPPORTED: 0x6e00,
  NO_PRECISE_DIAGNOSIS: 0x6f00,
} as const;

export class ApduError extends Error {
  override name = 'ApduError';
  constructor(
    readonly code: 'status' | 'malformed' | 'channel' | 'transport',
    message: string,
    /** The status word the card answered, when there is one. */
    readonly sw?: number,
  ) {
    super(message);
  }
}

export function swHex(sw: number): string {
  return sw.toString(16).toUpperCase().padStart(4, '0');
}

/** Anything that takes one command APDU and answers one response APDU (data ‖ SW1 SW2). */
export interface ApduTransport {
  transmit(apdu: Buffer): Promise<Buffer>;
}

// ---------------------------------------------------------------------------------------------
// Class byte and command parsing

interface ParsedCla {
  channel: number;
  /** b8 set: GlobalPlatform/proprietary class (80, C0 …); clear: interindustry (00, 40 …). */
  proprietary: boolean;
  secureMessaging: boolean;
  chaining: boolean;
}

/** Decodes CLA per ISO/IEC 7816-4 §5.4.1 (first and further interindustry coding, channels 0–19). */
export function parseCla(cla: number): ParsedCla | undefined {
  if (cla === 0xff) return undefined;
  const proprietary = (cla & 0x80) !== 0;
  if ((cla & 0x40) === 0) {
    // first interindustry form: b8 class, b7 0, b6 0 (RFU), b5 chaining, b4-b3 SM, b2-b1 channel
    if ((cla & 0x20) !== 0) return undefined; // b6 set is RFU in this form
    return { channel: cla & 0x03, proprietary, secureMessaging: (cla & 0x0c) !== 0, chaining: (cla & 0x10) !== 0 };
  }
  // further interindustry form: b7 1, b6 SM, b5 chaining, b4-b1 channel - 4
  return { channel: 4 + (cla & 0x0f), proprietary, secureMessaging: (cla & 0x20) !== 0, chaining: (cla & 0x10) !== 0 };
}

/** CLA for a channel, in the class of `base` (0x00 interindustry, 0x80 proprietary). */
export function claFor(channel: number, base: 0x00 | 0x80 = 0x80): number {
  if (!Number.isInteger(channel) || channel < 0 || channel > 19) throw new ApduError('channel', `no logical channel ${channel}`);
  return channel < 4 ? base | channel : base | 0x40 | (channel - 4);
}

export interface CommandApdu {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  data: Buffer;
  /** Expected response length (256 for Le = 00), undefined when absent. */
  le?: number;
}

/** Parses a short command APDU (cases 1–4). Extended lengths are not used by ES10 LPAs. */
export function parseCommandApdu(apdu: Buffer): CommandApdu {
  if (apdu.length < 4) throw new ApduError('malformed', `command APDU of ${apdu.length} bytes`);
  const [cla, ins, p1, p2] = [apdu[0]!, apdu[1]!, apdu[2]!, apdu[3]!];
  if (apdu.length === 4) return { cla, ins, p1, p2, data: Buffer.alloc(0) };
  const p3 = apdu[4]!;
  if (apdu.length === 5) return { cla, ins, p1, p2, data: Buffer.alloc(0), le: p3 === 0 ? 256 : p3 };
  if (p3 === 0) throw new ApduError('malformed', 'extended-length APDUs are not supported');
  if (apdu.length === 5 + p3) return { cla, ins, p1, p2, data: apdu.subarray(5) };
  if (apdu.length === 6 + p3) {
    const le = apdu[5 + p3]!;
    return { cla, ins, p1, p2, data: apdu.subarray(5, 5 + p3), le: le === 0 ? 256 : le };
  }
  throw new ApduError('malformed', `Lc ${p3} does not match a command of ${apdu.length} bytes`);
}

export function buildCommandApdu(c: CommandApdu): Buffer {
  if (c.data.length > 255) throw new ApduError('malformed', `Lc ${c.data.length} > 255`);
  const parts: number[] = [c.cla, c.ins, c.p1, c.p2];
  const head = Buffer.from(parts);
  const lc = c.data.length ? Buffer.concat([Buffer.from([c.data.length]), c.data]) : Buffer.alloc(0);
  const le = c.le === undefined ? Buffer.alloc(0) : Buffer.from([c.le >= 256 ? 0 : c.le]);
  return Buffer.concat([head, lc, le]);
}

function withSw(data: Buffer, sw: number): Buffer {
  return Buffer.concat([data, Buffer.from([sw >> 8, sw & 0xff])]);
}

// ---------------------------------------------------------------------------------------------
// Card side

const INS = {
  MANAGE_CHANNEL: 0x70,
  SELECT: 0xa4,
  STORE_DATA: 0xe2,
  GET_RESPONSE: 0xc0,
} as const;

interface ChannelState {
  selected?: 'isdr';
  /** STORE DATA blocks received so far for the command in progress. */
  blocks: Buffer[];
  nextBlock: number;
  /** Answer bytes not yet fetched with GET RESPONSE. */
  pending?: Buffer;
}

export interface ApduFrontOptions {
  /** Logical channels the card offers besides the basic channel (ISO allows up to 19; default 3). */
  logicalChannels?: number;
  /** Largest response piece (default 256, what a T=1 card answers to Le = 00). */
  maxResponse?: number;
  /** Called with every ES10 error the card throws (the APDU answer is then 6F00). */
  onError?: (err: unknown) => void;
}

/** A card's APDU interface in front of an ES10 handler. */
export class ApduFront implements ApduTransport {
  readonly #card: Es10Card;
  readonly #channels = new Map<number, ChannelState>();
  readonly #maxChannel: number;
  readonly #maxResponse: number;
  readonly #onError?: (err: unknown) => void;

  constructor(card: Es10Card, opts: ApduFrontOptions = {}) {
    this.#card = card;
    this.#maxChannel = Math.min(19, Math.max(0, opts.logicalChannels ?? 3));
    this.#maxResponse = Math.min(256, Math.max(1, opts.maxResponse ?? 256));
    this.#onError = opts.onError;
    this.reset();
  }

  /** Card reset (ATR): only the basic channel is open and nothing is selected on it. */
  reset(): void {
    this.#channels.clear();
    this.#channels.set(0, { blocks: [], nextBlock: 0 });
  }

  /** Logical channels currently open (0 = basic channel, always open). */
  get openChannels(): number[] {
    return [...this.#channels.keys()].sort((a, b) => a - b);
  }

  /**
   * Opens a logical channel and selects `aid` on it, like MANAGE CHANNEL + SELECT (what lpac's
   * backends do in one `logic_channel_open`). Returns the channel number.
   */
  async openLogicalChannel(aid: Buffer = ISD_R_AID): Promise<number> {
    const open = await this.transmit(Buffer.from([0x00, INS.MANAGE_CHANNEL, 0x00, 0x00, 0x01]));
    const sw = open.readUInt16BE(open.length - 2);
    if (sw !== SW.OK || open.length !== 3) throw new ApduError('channel', `MANAGE CHANNEL open answered ${swHex(sw)}`, sw);
    const channel = open[0]!;
    const sel = await this.transmit(buildCommandApdu({ cla: claFor(channel, 0x00), ins: INS.SELECT, p1: 0x04, p2: 0x00, data: aid, le: 256 }));
    const selSw = sel.readUInt16BE(sel.length - 2);
    if (selSw !== SW.OK && sel[sel.length - 2] !== 0x61) {
      this.closeLogicalChannel(channel);
      throw new ApduError('status', `SELECT ${aid.toString('hex').toUpperCase()} answered ${swHex(selSw)}`, selSw);
    }
    return channel;
  }

  closeLogicalChannel(channel: number): boolean {
    if (channel === 0) return false;
    return this.#channels.delete(channel);
  }

  async transmit(apdu: Buffer): Promise<Buffer> {
    let cmd: CommandApdu;
    try {
      cmd = parseCommandApdu(apdu);
    } catch {
      return withSw(Buffer.alloc(0), SW.WRONG_LENGTH);
    }
    const cla = parseCla(cmd.cla);
    if (!cla) return withSw(Buffer.alloc(0), SW.CLA_NOT_SUPPORTED);
    const ch = this.#channels.get(cla.channel);
    if (!ch) return withSw(Buffer.alloc(0), SW.LOGICAL_CHANNEL_NOT_SUPPORTED);
    if (cla.secureMessaging) return withSw(Buffer.alloc(0), SW.SECURE_MESSAGING_NOT_SUPPORTED);

    // Any command but GET RESPONSE drops an answer that was not fetched.
    if (cmd.ins !== INS.GET_RESPONSE) ch.pending = undefined;

    switch (cmd.ins) {
      case INS.MANAGE_CHANNEL:
        if (cla.proprietary) return withSw(Buffer.alloc(0), SW.CLA_NOT_SUPPORTED);
        return this.#manageChannel(cla.channel, cmd);
      case INS.SELECT:
        if (cla.proprietary) return withSw(Buffer.alloc(0), SW.CLA_NOT_SUPPORTED);
        return this.#select(ch, cmd);
      case INS.GET_RESPONSE:
        return this.#getResponse(ch, cmd);
      case INS.STORE_DATA:
        if (!cla.proprietary) return withSw(Buffer.alloc(0), SW.CLA_NOT_SUPPORTED);
        return this.#storeData(ch, cmd);
      default:
        return withSw(Buffer.alloc(0), SW.INS_NOT_SUPPORTED);
    }
  }

  #manageChannel(from: number, cmd: CommandApdu): Buffer {
    if (cmd.p1 === 0x00) {
      // open: P2 = 00 lets the card choose and answers the number (Le 01)
      if (cmd.p2 !== 0x00) {
        if (cmd.p2 > this.#maxChannel || this.#channels.has(cmd.p2)) return withSw(Buffer.alloc(0), SW.INCORRECT_P1P2);
        this.#channels.set(cmd.p2, { blocks: [], nextBlock: 0 });
        return withSw(Buffer.alloc(0), SW.OK);
      }
      for (let n = 1; n <= this.#maxChannel; n++) {
        if (!this.#channels.has(n)) {
          this.#channels.set(n, { blocks: [], nextBlock: 0 });
          return withSw(Buffer.from([n]), SW.OK);
        }
      }
      return withSw(Buffer.alloc(0), SW.FUNCTION_NOT_SUPPORTED);
    }
    if (cmd.p1 === 0x80) {
      const target = cmd.p2 === 0 ? from : cmd.p2;
      if (target === 0) return withSw(Buffer.alloc(0), SW.INCORRECT_P1P2);
      if (!this.#channels.delete(target)) return withSw(Buffer.alloc(0), SW.LOGICAL_CHANNEL_NOT_SUPPORTED);
      return withSw(Buffer.alloc(0), SW.OK);
    }
    return withSw(Buffer.alloc(0), SW.INCORRECT_P1P2);
  }

  #select(ch: ChannelState, cmd: CommandApdu): Buffer {
    // P1 04 = select by DF name (AID); P2 00/0C = first or only occurrence, FCI or no data
    if (cmd.p1 !== 0x04 || (cmd.p2 & 0xf3) !== 0x00) return withSw(Buffer.alloc(0), SW.INCORRECT_P1P2);
    if (!cmd.data.equals(ISD_R_AID)) {
      // A failed SELECT leaves the channel without a selected application.
      ch.selected = undefined;
      ch.blocks = [];
      ch.nextBlock = 0;
      return withSw(Buffer.alloc(0), SW.FILE_NOT_FOUND);
    }
    ch.selected = 'isdr';
    ch.blocks = [];
    ch.nextBlock = 0;
    if ((cmd.p2 & 0x0c) === 0x0c) return withSw(Buffer.alloc(0), SW.OK);
    // FCI: 6F { 84 AID ; A5 proprietary { 9F65 max command length FF } }
    const proprietary = Buffer.from([0xa5, 0x04, 0x9f, 0x65, 0x01, 0xff]);
    const inner = Buffer.concat([Buffer.from([0x84, ISD_R_AID.length]), ISD_R_AID, proprietary]);
    return this.#answer(ch, Buffer.concat([Buffer.from([0x6f, inner.length]), inner]), cmd.le);
  }

  async #storeData(ch: ChannelState, cmd: CommandApdu): Promise<Buffer> {
    if (ch.selected !== 'isdr') return withSw(Buffer.alloc(0), SW.CONDITIONS_NOT_SATISFIED);
    const last = (cmd.p1 & 0x80) !== 0;
    const block = cmd.p2;
    if (block !== (ch.nextBlock & 0xff) && block === 0) {
      // block 0 out of turn: the previous command was abandoned, a new one starts
      ch.blocks = [];
      ch.nextBlock = 0;
    }
    if (block !== (ch.nextBlock & 0xff)) {
      ch.blocks = [];
      ch.nextBlock = 0;
      return withSw(Buffer.alloc(0), SW.INCORRECT_P1P2);
    }
    ch.blocks.push(Buffer.from(cmd.data));
    ch.nextBlock++;
    if (!last) return withSw(Buffer.alloc(0), SW.OK);
    const command = Buffer.concat(ch.blocks);
    ch.blocks = [];
    ch.nextBlock = 0;
    let answer: Buffer;
    try {
      answer = await this.#card.transmit(command);
    } catch (err) {
      this.#onError?.(err);
      return withSw(Buffer.alloc(0), SW.NO_PRECISE_DIAGNOSIS);
    }
    return this.#answer(ch, answer, cmd.le);
  }

  #getResponse(ch: ChannelState, cmd: CommandApdu): Buffer {
    if (cmd.p1 !== 0 || cmd.p2 !== 0) return withSw(Buffer.alloc(0), SW.INCORRECT_P1P2);
    const pending = ch.pending;
    ch.pending = undefined;
    if (!pending || pending.length === 0) return withSw(Buffer.alloc(0), SW.CONDITIONS_NOT_SATISFIED);
    return this.#answer(ch, pending, cmd.le ?? 256);
  }

  /**
   * Hands out up to one piece (the smaller of Le and the card's piece size; no Le on a case-3
   * command behaves like Le = 00, as T=1 cards do with lpac) and keeps the rest for GET RESPONSE,
   * announcing it with 61xx (xx = remaining bytes, 00 for 256 or more).
   */
  #answer(ch: ChannelState, data: Buffer, le: number | undefined): Buffer {
    const size = Math.min(this.#maxResponse, le ?? 256);
    if (data.length <= size) return withSw(data, SW.OK);
    const rest = data.subarray(size);
    ch.pending = rest;
    return withSw(data.subarray(0, size), 0x6100 | (rest.length >= 256 ? 0 : rest.length));
  }
}

// ---------------------------------------------------------------------------------------------
// LPA side

export interface ApduCardOptions {
  /** Logical channel to use; opened (MANAGE CHANNEL + SELECT ISD-R) by `open()` when not given. */
  channel?: number;
  /** Largest STORE DATA block (lpac: 120, LPAC_CUSTOM_ES10X_MSS 6–255). */
  blockSize?: number;
}

/** An `Es10Card` that talks STORE DATA / GET RESPONSE to an APDU transport, as lpac does. */
export class ApduCard implements Es10Card {
  readonly #transport: ApduTransport;
  readonly #blockSize: number;
  #channel?: number;
  /** Number of APDUs exchanged (for tests and statistics). */
  apduCount = 0;

  constructor(transport: ApduTransport, opts: ApduCardOptions = {}) {
    this.#transport = transport;
    const bs = opts.blockSize ?? 120;
    if (!Number.isInteger(bs) || bs < 6 || bs > 255) throw new ApduError('malformed', `block size ${bs} outside 6..255`);
    this.#blockSize = bs;
    this.#channel = opts.channel;
  }

  get channel(): number | undefined {
    return this.#channel;
  }

  async #send(apdu: Buffer): Promise<{ data: Buffer; sw: number }> {
    this.apduCount++;
    const r = await this.#transport.transmit(apdu);
    if (r.length < 2) throw new ApduError('transport', `response APDU of ${r.length} bytes`);
    return { data: r.subarray(0, r.length - 2), sw: r.readUInt16BE(r.length - 2) };
  }

  /** MANAGE CHANNEL (open) on the basic channel, then SELECT the ISD-R on the new channel. */
  async open(aid: Buffer = ISD_R_AID): Promise<number> {
    if (this.#channel !== undefined) return this.#channel;
    const m = await this.#send(Buffer.from([0x00, INS.MANAGE_CHANNEL, 0x00, 0x00, 0x01]));
    if (m.sw !== SW.OK || m.data.length !== 1) throw new ApduError('status', `MANAGE CHANNEL answered ${swHex(m.sw)}`, m.sw);
    const ch = m.data[0]!;
    const s = await this.#send(buildCommandApdu({ cla: claFor(ch, 0x00), ins: INS.SELECT, p1: 0x04, p2: 0x00, data: aid, le: 256 }));
    let sw = s.sw;
    while ((sw & 0xff00) === 0x6100) sw = (await this.#send(buildCommandApdu({ cla: claFor(ch, 0x00), ins: INS.GET_RESPONSE, p1: 0, p2: 0, data: Buffer.alloc(0), le: sw & 0xff || 256 }))).sw;
    if (sw !== SW.OK) {
      await this.#send(Buffer.from([claFor(ch, 0x00), INS.MANAGE_CHANNEL, 0x80, ch]));
      throw new ApduError('status', `SELECT ISD-R answered ${swHex(sw)}`, sw);
    }
    this.#channel = ch;
    return ch;
  }

  /** MANAGE CHANNEL (close) of the channel opened by `open()`. */
  async close(): Promise<void> {
    const ch = this.#channel;
    if (ch === undefined || ch === 0) return;
    this.#channel = undefined;
    const r = await this.#send(Buffer.from([claFor(ch, 0x00), INS.MANAGE_CHANNEL, 0x80, ch]));
    if (r.sw !== SW.OK) throw new ApduError('status', `MANAGE CHANNEL close answered ${swHex(r.sw)}`, r.sw);
  }

  async transmit(command: Buffer): Promise<Buffer> {
    const ch = this.#channel ?? (await this.open());
    const cla = claFor(ch, 0x80);
    const blocks: Buffer[] = [];
    for (let off = 0; off < command.length || blocks.length === 0; off += this.#blockSize) {
      blocks.push(command.subarray(off, off + this.#blockSize));
    }
    let last: { data: Buffer; sw: number } | undefined;
    for (let i = 0; i < blocks.length; i++) {
      const isLast = i === blocks.length - 1;
      // no Le, as lpac sends it (case 3); the card then answers up to 256 bytes
      last = await this.#send(buildCommandApdu({ cla, ins: INS.STORE_DATA, p1: isLast ? 0x91 : 0x11, p2: i & 0xff, data: blocks[i]! }));
      if (!isLast && last.sw !== SW.OK) throw new ApduError('status', `STORE DATA block ${i} answered ${swHex(last.sw)}`, last.sw);
    }
    const out: Buffer[] = [last!.data];
    let sw = last!.sw;
    for (;;) {
      if ((sw & 0xff00) === 0x6100) {
        const r = await this.#send(buildCommandApdu({ cla, ins: INS.GET_RESPONSE, p1: 0, p2: 0, data: Buffer.alloc(0), le: sw & 0xff || 256 }));
        out.push(r.data);
        sw = r.sw;
      } else if ((sw & 0xff00) === 0x6c00) {
        // wrong Le: repeat GET RESPONSE with the length the card names
        const r = await this.#send(buildCommandApdu({ cla, ins: INS.GET_RESPONSE, p1: 0, p2: 0, data: Buffer.alloc(0), le: sw & 0xff || 256 }));
        out.push(r.data);
        sw = r.sw;
      } else break;
    }
    if (sw !== SW.OK) throw new ApduError('status', `ES10 command ${command.subarray(0, 2).toString('hex').toUpperCase()} answered ${swHex(sw)}`, sw);
    return Buffer.concat(out);
  }
}
