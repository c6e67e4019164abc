import { createHash } from 'node:crypto';
import t, { type Test } from 'tap';
import { ApduCard, ApduError, ApduFront, ISD_R_AID, claFor, parseCla, parseCommandApdu, type ApduTransport } from '../../src/sim/apdu.js';
import type { Es10Card } from '../../src/sim/es10.js';
import { VirtualEuicc } from '../../src/sim/euicc.js';
import { Lpa } from '../../src/sim/lpa.js';
import { SKIP_CAPTURES, es10Sessions } from '../helpers/lpac-capture.js';
import { SGP26 } from '../helpers/shared-data.js';
import { testPkiDir } from '../helpers/world.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const sw = (r: Buffer) => r.readUInt16BE(r.length - 2).toString(16).toUpperCase().padStart(4, '0');

/** A card whose answer is a deterministic function of the command: length varies with the input. */
class HashCard implements Es10Card {
  received: Buffer[] = [];
  async transmit(command: Buffer): Promise<Buffer> {
    this.received.push(Buffer.from(command));
    const n = command.length === 0 ? 0 : (command[0]! * 7 + command.length * 13) % 1500;
    const out: Buffer[] = [];
    let h = createHash('sha256').update(command).digest();
    while (Buffer.concat(out).length < n) {
      out.push(h);
      h = createHash('sha256').update(h).digest();
    }
    return Buffer.concat(out).subarray(0, n);
  }
}

/** Answers the command reversed. */
class EchoCard implements Es10Card {
  received: Buffer[] = [];
  async transmit(command: Buffer): Promise<Buffer> {
    this.received.push(Buffer.from(command));
    return Buffer.from(command).reverse();
  }
}

/** Replays captured ES10 answers in order and records the commands it gets. */
class ReplayCard implements Es10Card {
  received: Buffer[] = [];
  constructor(private readonly answers: Buffer[]) {}
  async transmit(command: Buffer): Promise<Buffer> {
    this.received.push(Buffer.from(command));
    const a = this.answers.shift();
    if (!a) throw new Error('no more answers');
    return a;
  }
}

class RecordingTransport implements ApduTransport {
  log: Array<{ c: Buffer; r: Buffer }> = [];
  constructor(private readonly inner: ApduTransport) {}
  async transmit(apdu: Buffer): Promise<Buffer> {
    const r = await this.inner.transmit(apdu);
    this.log.push({ c: Buffer.from(apdu), r });
    return r;
  }
}

t.test('CLA coding for channels 0-19', async (t) => {
  t.equal(claFor(0), 0x80);
  t.equal(claFor(1), 0x81);
  t.equal(claFor(3, 0x00), 0x03);
  t.equal(claFor(4), 0xc0);
  t.equal(claFor(19, 0x00), 0x4f);
  for (let ch = 0; ch <= 19; ch++) {
    t.equal(parseCla(claFor(ch))!.channel, ch);
    t.equal(parseCla(claFor(ch, 0x00))!.channel, ch);
    t.equal(parseCla(claFor(ch))!.proprietary, true);
  }
  t.throws(() => claFor(20), ApduError);
  t.equal(parseCla(0xff), undefined);
  t.equal(parseCla(0x84)!.secureMessaging, true);
});

t.test('command APDU cases', async (t) => {
  t.same(parseCommandApdu(hex('81c00000a8')), { cla: 0x81, ins: 0xc0, p1: 0, p2: 0, data: Buffer.alloc(0), le: 0xa8 });
  t.same(parseCommandApdu(hex('81c0000000')).le, 256);
  const c3 = parseCommandApdu(hex('81e2910003bf2e00'));
  t.same([c3.p1, c3.p2, c3.data.toString('hex'), c3.le], [0x91, 0, 'bf2e00', undefined]);
  t.equal(parseCommandApdu(hex('80e2910003bf2e0000')).le, 256);
  t.same(parseCommandApdu(hex('0070800100')).le, 256);
  t.equal(parseCommandApdu(hex('01708001')).le, undefined);
  t.throws(() => parseCommandApdu(hex('80e2910004bf2e00')), ApduError);
  t.throws(() => parseCommandApdu(hex('80e291')), ApduError);
});

t.test('card side: channels, SELECT and status words', async (t) => {
  const card = new EchoCard();
  const front = new ApduFront(card, { logicalChannels: 2 });
  // STORE DATA on the basic channel before any SELECT
  t.equal(sw(await front.transmit(hex('80e2910003bf2e00'))), '6985');
  // unknown INS / CLA / closed channel / bad length
  t.equal(sw(await front.transmit(hex('80ca00fe00'))), '6D00');
  t.equal(sw(await front.transmit(hex('ffe2910003bf2e00'))), '6E00');
  t.equal(sw(await front.transmit(hex('81e2910003bf2e00'))), '6881');
  t.equal(sw(await front.transmit(hex('80e2910005bf2e00'))), '6700');
  // GET RESPONSE with nothing pending
  t.equal(sw(await front.transmit(hex('80c0000000'))), '6985');

  // MANAGE CHANNEL open: the card picks 1, then 2, then runs out
  const o1 = await front.transmit(hex('0070000001'));
  t.equal(o1.toString('hex'), '019000');
  t.equal((await front.transmit(hex('0070000001'))).toString('hex'), '029000');
  t.equal(sw(await front.transmit(hex('0070000001'))), '6A81');
  // SELECT of another AID fails, the ISD-R succeeds with an FCI naming it
  t.equal(sw(await front.transmit(hex('01a4040007a000000087100200'))), '6A82');
  t.equal(sw(await front.transmit(hex('81e2910003bf2e00'))), '6985', 'nothing selected on channel 1');
  const sel = await front.transmit(Buffer.concat([hex('01a4040010'), ISD_R_AID, hex('00')]));
  t.equal(sw(sel), '9000');
  t.ok(sel.subarray(0, -2).includes(ISD_R_AID), 'FCI carries the AID');
  // a one-block ES10 command on channel 1
  const r = await front.transmit(hex('81e2910003bf2e00'));
  t.equal(card.received.at(-1)!.toString('hex'), 'bf2e00');
  t.equal(r.subarray(0, -2).toString('hex'), '002ebf');
  t.equal(sw(r), '9000');
  // block numbers must follow each other
  t.equal(sw(await front.transmit(hex('81e2110003bf3803'))), '9000');
  t.equal(sw(await front.transmit(hex('81e2910203010203'))), '6A86');
  // close channel 2 from channel 0, then channel 1 from itself
  t.equal(sw(await front.transmit(hex('0070800200'))), '9000');
  t.equal(sw(await front.transmit(hex('0170800000'))), '9000');
  t.same(front.openChannels, [0]);
  t.equal(sw(await front.transmit(hex('81e2910003bf2e00'))), '6881');
  // a card exception becomes 6F00
  const errors: unknown[] = [];
  const broken = new ApduFront({ transmit: async () => { throw new Error('boom'); } }, { onError: (e) => errors.push(e) });
  const ch = await broken.openLogicalChannel();
  t.equal(ch, 1);
  t.equal(sw(await broken.transmit(hex('81e2910003bf2e00'))), '6F00');
  t.equal(errors.length, 1);
});

t.test('long answers come in 256-byte pieces with 61xx and GET RESPONSE', async (t) => {
  const answer = Buffer.alloc(256 * 2 + 5, 0xab).map((_, i) => i & 0xff);
  const front = new ApduFront({ transmit: async () => Buffer.from(answer) });
  const ch = await front.openLogicalChannel();
  const r1 = await front.transmit(Buffer.from([0x80 | ch, 0xe2, 0x91, 0x00, 0x03, 0xbf, 0x22, 0x00]));
  t.equal(r1.length, 258);
  t.equal(sw(r1), '6100', 'more than 255 bytes left');
  const r2 = await front.transmit(Buffer.from([0x80 | ch, 0xc0, 0, 0, 0]));
  t.equal(sw(r2), '6105');
  // a smaller Le than what is left: the card gives Le bytes and announces the rest
  const r3 = await front.transmit(Buffer.from([0x80 | ch, 0xc0, 0, 0, 2]));
  t.equal(sw(r3), '6103');
  const r4 = await front.transmit(Buffer.from([0x80 | ch, 0xc0, 0, 0, 3]));
  t.equal(sw(r4), '9000');
  t.same(Buffer.concat([r1.subarray(0, -2), r2.subarray(0, -2), r3.subarray(0, -2), r4.subarray(0, -2)]), answer);
  // another command drops what was not fetched
  t.equal(sw(await front.transmit(Buffer.from([0x80 | ch, 0xe2, 0x91, 0x00, 0x03, 0xbf, 0x22, 0x00]))), '6100');
  t.equal(sw(await front.transmit(Buffer.concat([Buffer.from([ch, 0xa4, 0x04, 0x0c, 0x10]), ISD_R_AID]))), '9000');
  t.equal(sw(await front.transmit(Buffer.from([0x80 | ch, 0xc0, 0, 0, 0]))), '6985');
});

t.test('both layers agree: ApduCard(ApduFront(card)) == card, for many sizes and block sizes', async (t) => {
  for (const blockSize of [6, 120, 255]) {
    const inner = new HashCard();
    const front = new ApduFront(inner);
    const rec = new RecordingTransport(front);
    const lpaSide = new ApduCard(rec, { blockSize });
    const direct = new HashCard();
    for (const len of [0, 1, 3, 5, 6, 119, 120, 121, 240, 241, 255, 256, 1020, 1036, 2000]) {
      const cmd = createHash('sha512').update(`${len}`).digest();
      const command = Buffer.concat(Array.from({ length: Math.ceil(len / 64) + 1 }, () => cmd)).subarray(0, len);
      const via = await lpaSide.transmit(command);
      const want = await direct.transmit(command);
      t.same(via, want, `len ${len} block ${blockSize}`);
      t.same(inner.received.at(-1), command, 'the card sees the whole command');
    }
    // every STORE DATA block within the size; P1 11/91; P2 counting from 0
    const stores = rec.log.filter((x) => x.c[1] === 0xe2);
    t.ok(stores.every((x) => (x.c[4] ?? 0) <= blockSize && (x.c[2] === 0x11 || x.c[2] === 0x91)));
    t.equal(rec.log[0]!.c.toString('hex'), '0070000001', 'opens a channel first');
    t.equal(lpaSide.channel, 1);
    await lpaSide.close();
    t.same(front.openChannels, [0]);
  }
  t.throws(() => new ApduCard(new ApduFront(new HashCard()), { blockSize: 5 }), ApduError);
});

t.test('ApduCard reports status words', async (t) => {
  const front = new ApduFront(new HashCard());
  const lpaSide = new ApduCard(front, { channel: 1 });
  await t.rejects(lpaSide.transmit(hex('bf2e00')), { name: 'ApduError', code: 'status', sw: 0x6881 });
});

t.test('lpac capture: the card side answers exactly as the real eUICC did', { skip: SKIP_CAPTURES }, async (t) => {
  for (const session of es10Sessions()) {
    const card = new ReplayCard(session.map((e) => e.response));
    const front = new ApduFront(card);
    t.equal(await front.openLogicalChannel(), 1, 'channel 1 as in the capture');
    for (const ex of session) {
      for (const a of ex.apdus) {
        const r = await front.transmit(hex(a.c));
        t.equal(r.toString('hex').toUpperCase(), a.r.toUpperCase(), `answer to ${a.c.slice(0, 16)}`);
      }
    }
    t.same(card.received, session.map((e) => e.command), 'commands reassembled as sent');
  }
});

t.test('lpac capture: the LPA side sends exactly the APDUs lpac sent', { skip: SKIP_CAPTURES }, async (t) => {
  for (const session of es10Sessions()) {
    const front = new ApduFront(new ReplayCard(session.map((e) => e.response)));
    await front.openLogicalChannel();
    const rec = new RecordingTransport(front);
    const lpaSide = new ApduCard(rec, { channel: 1 });
    for (const ex of session) {
      const before = rec.log.length;
      t.same(await lpaSide.transmit(ex.command), ex.response);
      t.same(
        rec.log.slice(before).map((x) => x.c.toString('hex')),
        ex.apdus.map((a) => a.c.toLowerCase()),
        `APDUs for ${ex.command.subarray(0, 2).toString('hex')}`,
      );
    }
  }
});

t.test('the virtual eUICC answers the same directly and through the APDU layers', async (t) => {
  // the generated PKI's eUICC; with the SGP.26 set present, its published eUICC as well
  const pkiDirs = [await testPkiDir(), ...(SGP26.present ? [SGP26.dir] : [])];
  for (const pkiDir of pkiDirs) await t.test(pkiDir === SGP26.dir ? 'SGP.26 eUICC' : 'generated eUICC', (t) => sameBothWays(t, pkiDir));
});

async function sameBothWays(t: Test, pkiDir: string): Promise<void> {
  const card = await VirtualEuicc.create({ pkiDir });
  const front = new ApduFront(card);
  const via = new ApduCard(front);
  for (const cmd of ['bf3e035c015a', 'bf2000', 'bf2200', 'bf2d00', 'bf2800', 'bf3c00', 'bf3003800109']) {
    const direct = await card.transmit(hex(cmd));
    t.ok(direct.length > 0, `${cmd} answered`);
    t.same(await via.transmit(hex(cmd)), direct, cmd);
  }
  t.equal(await new Lpa(via, {}).getEid(), card.eid);
  t.equal((await card.transmit(hex('bf2e00'))).length, 21);
  t.equal((await via.transmit(hex('bf2e00'))).length, 21);
}
