/**
 * Profile templates: a complete check on import, and personalisation that changes only the ICCID, IMSI,
 * Ki and OPc bytes. Runs on a template built by src/saip (always) and on the GSMA TS.48 v7 profiles in
 * ../shared/upp when that folder is there.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { decodeAll, tlv } from '../../src/der/tlv.js';
import { PE_TAG, peTypeOfTag } from '../../src/saip/elements.js';
import { buildProfile, decodeProfile } from '../../src/saip/profile.js';
import { SCP03_KVN, TemplateError, orderProfilePackage, personalise, readTemplate, securityDomainKeys } from '../../src/saip/template.js';
import { needs, TS48 } from '../helpers/shared-data.js';

const uppDir = TS48.dir;
const ts48 = TS48.present ? readdirSync(uppDir).filter((f) => f.endsWith('.der')).sort() : [];
// Without the TS.48 set the checks run on the built template only; say so in the results.
if (!TS48.present) t.test('the same checks on the GSMA TS.48 profiles', { skip: needs(TS48) }, async () => {});

const own = buildProfile({
  iccid: '89000123456789012341', imsi: '001010123456789', ki: Buffer.alloc(16, 0x01), opc: Buffer.alloc(16, 0x02),
  spn: 'Template Op', profileType: 'own template',
  sdKeys: { kvn: 0x30, enc: Buffer.alloc(16, 0xe1), mac: Buffer.alloc(16, 0xa1), dek: Buffer.alloc(16, 0xd1) },
});
const templates: Array<[string, Buffer]> = [['built by src/saip', own], ...ts48.map((f) => [f, readFileSync(join(uppDir, f))] as [string, Buffer])];

const sub = { iccid: '8988211234567890123', imsi: '31041098765432', ki: Buffer.from('A1'.repeat(16), 'hex'), opc: Buffer.from('B2'.repeat(16), 'hex') };

/** Offsets at which two equally long buffers differ. */
function changedOffsets(a: Buffer, b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

for (const [name, der] of templates) {
  t.test(`template ${name}: read, personalise, only the subscription's bytes change`, async (t) => {
    const tpl = readTemplate(der);
    t.equal(tpl.elements[0]!.type, 'header');
    t.equal(tpl.elements.at(-1)!.type, 'end');
    t.equal(tpl.elements.length, decodeAll(der).length, 'every ProfileElement listed');

    const out = personalise(tpl, sub);
    t.equal(out.length, der.length, 'same length');
    const d = decodeProfile(out);
    t.equal(d.iccid, sub.iccid, 'ICCID in the ProfileHeader (and EF.ICCID agrees, or decodeProfile throws)');
    t.equal(d.imsi, sub.imsi, 'EF.IMSI');
    t.same(d.ki, sub.ki, 'Ki');
    t.same(d.opc, sub.opc, 'OPc');
    t.equal(d.algorithmId, decodeProfile(der).algorithmId, "the template's algorithm is kept");

    // Every changed byte lies inside one of the personalised fields; the rest is the template's.
    const slots = [tpl.slots.headerIccid, tpl.slots.efImsi, ...(tpl.slots.efIccid ? [tpl.slots.efIccid] : []),
      ...tpl.slots.aka.flatMap((a) => [a.key, a.opc])];
    const outside = changedOffsets(der, out).filter((i) => !slots.some((s) => i >= s.offset && i < s.offset + s.length));
    t.same(outside, [], 'no byte outside the personalised fields changed');
    const a = decodeAll(der);
    const b = decodeAll(out);
    const untouched = new Set([PE_TAG.header, PE_TAG.mf, PE_TAG.usim, PE_TAG.akaParameter]);
    for (let i = 0; i < a.length; i++) {
      if (!untouched.has(a[i]!.tag)) t.ok(a[i]!.raw.equals(b[i]!.raw), `${peTypeOfTag(a[i]!.tag)} (ProfileElement ${i + 1}) byte-identical`);
    }
    t.ok(personalise(tpl, { iccid: tpl.iccid, imsi: tpl.imsi, ki: decodeProfile(der).ki, opc: decodeProfile(der).opc }).equals(der),
      "personalised with the template's own values it is the template");
  });
}

/** What `f` throws, or undefined. */
function caught(f: () => unknown): TemplateError | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return err as TemplateError;
  }
}

/** The byte offset of the n-th ProfileElement of `der`. */
function peOffset(der: Buffer, n: number): number {
  return decodeAll(der).slice(0, n).reduce((sum, x) => sum + x.raw.length, 0);
}

t.test('a truncated template is refused naming the element and its offset', async (t) => {
  for (const [name, der] of templates) {
    const pes = decodeAll(der);
    let refused = 0;
    for (const cut of [1, 2, 40, 300, Math.floor(der.length / 2), der.length - 1]) {
      const e = (() => {
        try {
          readTemplate(der.subarray(0, cut));
          return undefined;
        } catch (err) {
          return err;
        }
      })();
      t.type(e, TemplateError, `${name} cut at ${cut}`);
      const te = e as TemplateError;
      t.equal(te.code, 'malformed');
      t.ok(Number.isInteger(te.offset) && te.offset! >= 0 && te.offset! <= cut, `offset ${te.offset} within the bytes given`);
      t.match(te.message, new RegExp(`at offset ${te.offset}`));
      t.match(te.element, /ProfileElement \d+|header|end/);
      refused++;
    }
    t.equal(refused, 6);
    // A cut inside a PE names that PE.
    const third = peOffset(der, 2);
    const e = caught(() => readTemplate(der.subarray(0, third + 5)));
    t.match(e?.element, /ProfileElement 3/, `${name}: the third element is named`);
    t.ok(pes.length > 3);
  }
});

t.test('an element nested deep inside a PE with a length running past its parent is found', async (t) => {
  // usim PE whose EF.IMSI fillFileContent claims one byte more than the File holds: the PE itself still decodes.
  const pes = decodeAll(own);
  const usimIdx = pes.findIndex((p) => p.tag === PE_TAG.usim);
  const usim = Buffer.from(pes[usimIdx]!.raw);
  const imsi = pes[usimIdx]!.get(0xa3).get(0x83);
  const lenAt = imsi.raw.byteOffset - pes[usimIdx]!.raw.byteOffset + 1;
  usim[lenAt] = usim[lenAt]! + 1;
  const bad = Buffer.concat([...pes.slice(0, usimIdx).map((p) => p.raw), usim, ...pes.slice(usimIdx + 1).map((p) => p.raw)]);
  const e = caught(() => readTemplate(bad));
  t.type(e, TemplateError);
  t.equal(e?.code, 'malformed');
  t.match(e?.element, /^usim \(ProfileElement 5\)\/A3/, 'names the PE and the File field');
  t.ok(e!.offset! > peOffset(bad, usimIdx), `offset ${e?.offset} inside the usim PE`);
});

t.test('an unknown element is refused naming it and its offset', async (t) => {
  const pes = decodeAll(own);
  const at = peOffset(own, 3);
  const rfu = tlv(0xab, tlv(0xa0, tlv(0x81, Buffer.from([0x63]))));
  const withRfu = Buffer.concat([...pes.slice(0, 3).map((p) => p.raw), rfu, ...pes.slice(3).map((p) => p.raw)]);
  let e = caught(() => readTemplate(withRfu));
  t.type(e, TemplateError);
  t.equal(e?.offset, at);
  t.equal(e?.element, 'ProfileElement 4');
  t.match(e?.message, /unknown ProfileElement AB/);

  // Inside a File of the usim PE: a tag that is none of doNotCreate, fileDescriptor, fillFileOffset, fillFileContent.
  const usimIdx = pes.findIndex((p) => p.tag === PE_TAG.usim);
  const usim = pes[usimIdx]!;
  const kids = usim.children();
  const acc = kids.find((k) => k.tag === 0xb2)!;
  const badAcc = tlv(0xb2, acc.value, tlv(0x85, Buffer.from([0])));
  const newUsim = tlv(usim.tag, ...kids.map((k) => (k === acc ? badAcc : k.raw)));
  const bad = Buffer.concat([...pes.slice(0, usimIdx).map((p) => p.raw), newUsim, ...pes.slice(usimIdx + 1).map((p) => p.raw)]);
  e = caught(() => readTemplate(bad));
  t.type(e, TemplateError);
  t.match(e?.message, /unknown element 85 in File B2/);
  t.ok(e!.offset! > peOffset(bad, usimIdx), `offset ${e?.offset} inside the usim PE`);
});

t.test('a template must start with the header, end with the End PE and carry what personalisation replaces', async (t) => {
  const pes = decodeAll(own);
  const without = (tag: number) => Buffer.concat(pes.filter((p) => p.tag !== tag).map((p) => p.raw));
  t.throws(() => readTemplate(without(PE_TAG.header)), { code: 'malformed', message: /first ProfileElement/ });
  t.throws(() => readTemplate(without(PE_TAG.end)), { code: 'malformed', message: /last ProfileElement/ });
  t.throws(() => readTemplate(without(PE_TAG.usim)), { code: 'missingElement', message: /usim/ });
  t.throws(() => readTemplate(without(PE_TAG.akaParameter)), { code: 'missingElement', message: /akaParameter/ });
  const twice = Buffer.concat([...pes.slice(0, -1).map((p) => p.raw), pes[1]!.raw, pes.at(-1)!.raw]);
  t.throws(() => readTemplate(twice), { code: 'invalidValue', message: /identification 1 is used twice/ });
  t.throws(() => readTemplate(Buffer.alloc(0)), { code: 'malformed' });
});

t.test('template metadata: SPN, profile name and class come from the template', async (t) => {
  const tpl = readTemplate(own);
  t.same(tpl.metadata, { serviceProviderName: 'Template Op', profileName: 'own template', profileClass: 2 }, 'Milenage: operational');
  for (const f of ts48) {
    const m = readTemplate(readFileSync(join(uppDir, f))).metadata;
    t.same(m, { serviceProviderName: 'GSMA_TEST', profileName: 'GSMA Generic eUICC Test Profile', profileClass: 0 }, `${f}: EF.SPN, header profileType, test class (3GPP test algorithm)`);
  }
});

/** The SCP03 keys of the package's (one) security domain, as plain values. */
function sdKeys(upp: Buffer) {
  const [sd] = securityDomainKeys(upp);
  return sd!.keys.map((k) => ({ usage: k.usage, id: k.id, kvn: k.kvn, type: k.type, key: k.key.toString('hex') }));
}

t.test("the generated profile carries the order's SCP03 key set in its MNO security domain", async (t) => {
  const keys = Buffer.concat([Buffer.alloc(16, 0x11), Buffer.alloc(16, 0x22), Buffer.alloc(16, 0x33)]);
  const upp = orderProfilePackage({ ...sub, scp03Keys: keys }, null);
  t.same(sdKeys(upp), [
    { usage: 0x18, id: 1, kvn: SCP03_KVN, type: 0x88, key: '11'.repeat(16) },
    { usage: 0x14, id: 2, kvn: SCP03_KVN, type: 0x88, key: '22'.repeat(16) },
    { usage: 0x48, id: 3, kvn: SCP03_KVN, type: 0x88, key: '33'.repeat(16) },
  ]);
  t.equal(decodeProfile(upp).iccid, sub.iccid);
  t.not(sdKeys(orderProfilePackage({ ...sub, scp03Keys: null }, null))[0]!.key, sdKeys(orderProfilePackage({ ...sub, scp03Keys: null }, null))[0]!.key,
    'without stored keys every build draws fresh ones');
  // With a template the template's own security domain goes out unchanged.
  const fromTemplate = orderProfilePackage({ ...sub, scp03Keys: keys }, own);
  t.same(sdKeys(fromTemplate).map((k) => k.key), ['e1'.repeat(16), 'a1'.repeat(16), 'd1'.repeat(16)]);
});

t.test('the generated profile from its skeleton is byte for byte what buildProfile makes', async (t) => {
  for (const [iccid, imsi] of [['89000123456789012341', '001010123456789'], ['8944123456789012345', '23410987654'], ['8988211234567890123', '310410123456']]) {
    const keys = Buffer.from(Array.from({ length: 48 }, (_v, i) => i + 1));
    const s = { iccid, imsi, ki: Buffer.alloc(16, 0x5a), opc: Buffer.alloc(16, 0xa5), scp03Keys: keys };
    const built = buildProfile({ ...s, sdKeys: { kvn: SCP03_KVN, enc: keys.subarray(0, 16), mac: keys.subarray(16, 32), dek: keys.subarray(32) } });
    t.ok(orderProfilePackage(s, null).equals(built), `${iccid} / ${imsi}`);
  }
});
