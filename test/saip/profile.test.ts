import t from 'tap';
import { decodeAll, type Tlv } from '../../src/der/tlv.js';
import { iccidToEf } from '../../src/rsp/identifiers.js';
import { PE_TAG } from '../../src/saip/elements.js';
import {
  SaipError,
  assertProfileIccidMatchesMetadata,
  buildProfile,
  decodeProfile,
  profileHeaderIccid,
  profileIccidMatchesMetadata,
  splitProfileElements,
  type ProfileParams,
} from '../../src/saip/profile.js';

const KI = Buffer.from('000102030405060708090A0B0C0D0E0F', 'hex');
const OPC = Buffer.from('0F0E0D0C0B0A09080706050403020100', 'hex');
const base: ProfileParams = { iccid: '89000123456789012341', imsi: '001010123456063', ki: KI, opc: OPC };
const hex = (b: Buffer) => b.toString('hex').toUpperCase();
const saip = (code: string) => ({ name: 'SaipError', code });

function pe(upp: Buffer, tag: number, n = 0): Tlv {
  const found = decodeAll(upp).filter((x) => x.tag === tag)[n];
  if (!found) throw new Error(`no PE ${tag.toString(16)}`);
  return found;
}

t.test('round trip with a 20-digit ICCID', async (t) => {
  const upp = buildProfile({ ...base, spn: 'Mock_SMDP', profileType: 'mock-smdp test' });
  const d = decodeProfile(upp);
  t.equal(d.iccid, '89000123456789012341');
  t.equal(d.imsi, '001010123456063');
  t.same(d.ki, KI);
  t.same(d.opc, OPC);
  t.equal(d.algorithmId, 1, 'Milenage');
  t.equal(d.spn, 'Mock_SMDP');
  t.equal(d.profileType, 'mock-smdp test');
  t.same([d.majorVersion, d.minorVersion], [2, 3]);
  t.same(
    d.elements.map((e) => e.type),
    ['header', 'mf', 'pukCodes', 'pinCodes', 'usim', 'pinCodes', 'akaParameter', 'securityDomain', 'end'],
  );
  t.same(
    d.elements.map((e) => e.tag),
    [0xa0, 0xb0, 0xa3, 0xa2, 0xb3, 0xa2, 0xa4, 0xa6, 0xaa],
  );
  t.same(
    d.elements.map((e) => e.identification),
    [undefined, 1, 2, 3, 4, 5, 6, 7, 8],
    'PEHeader identifications unique and increasing',
  );
  t.equal(splitProfileElements(upp).length, 9);
  t.same(Buffer.concat(splitProfileElements(upp)), upp);
});

t.test('round trip with a 19-digit ICCID and its two codings', async (t) => {
  const upp = buildProfile({ ...base, iccid: '8944123456789012345', ki: hex(KI), opc: hex(OPC) });
  const d = decodeProfile(upp);
  t.equal(d.iccid, '8944123456789012345');
  t.same(d.ki, KI, 'hex Ki accepted');
  t.equal(d.spn, undefined);
  t.equal(hex(pe(upp, PE_TAG.header).get(0x83).value), '8944123456789012345F', 'header: unswapped, F at the end');
  t.equal(hex(pe(upp, PE_TAG.mf).get(0xa4).get(0x83).value), '984421436587092143F5', 'EF.ICCID: swapped');
  t.equal(profileHeaderIccid(upp), '8944123456789012345');
});

t.test('header and EF.ICCID codings match the notes example', async (t) => {
  const upp = buildProfile(base);
  const header = pe(upp, PE_TAG.header);
  t.equal(hex(header.get(0x83).value), '89000123456789012341');
  t.equal(hex(header.get(0x80).value), '02');
  t.equal(hex(header.get(0xa5).value), '81008400', 'usim + milenage mandatory services');
  const efIccid = pe(upp, PE_TAG.mf).get(0xa4);
  t.equal(hex(efIccid.get(0xa1).get(0x83).value), '2FE2');
  t.equal(hex(efIccid.get(0x83).value), '98001032547698103214');
});

t.test('USIM files: EF.IMSI, EF.ACC, EF.SPN, ADF AID', async (t) => {
  const upp = buildProfile({ ...base, spn: 'Zürich' });
  const usim = pe(upp, PE_TAG.usim);
  t.equal(hex(usim.get(0xa2).get(0xa1).get(0x84).value), 'A0000000871002FFFFFFFF8907090000');
  const imsi = usim.get(0xa3);
  t.equal(hex(imsi.get(0xa1).get(0x83).value), '6F07');
  t.equal(hex(imsi.get(0x83).value), '080910101032540636');
  const acc = usim.get(0xb2);
  t.equal(hex(acc.get(0xa1).get(0x83).value), '6F78');
  t.equal(hex(acc.get(0x83).value), '0008', 'last IMSI digit 3 -> bit 3');
  const acc9 = pe(buildProfile({ ...base, imsi: '001010123456069' }), PE_TAG.usim).get(0xb2).get(0x83).value;
  t.equal(hex(acc9), '0200', 'last IMSI digit 9 -> bit 9');
  t.equal(decodeProfile(upp).spn, 'Zürich', 'UCS2 SPN');
  t.equal(usim.get(0xad).get(0x83).value[1], 0x80);
});

t.test('AKA, PIN and PUK elements', async (t) => {
  const upp = buildProfile({ ...base, pin1: '1234', puk1: '87654321', adm1: '0102030405060708' });
  const algo = pe(upp, PE_TAG.akaParameter).get(0xa1).get(0xa1);
  t.equal(hex(algo.get(0x80).value), '01');
  t.same(algo.get(0x82).value, KI);
  t.same(algo.get(0x83).value, OPC);
  const pins = pe(upp, PE_TAG.pinCodes).get(0xa1).get(0xa0).all(0x30);
  t.equal(hex(pins[0]!.get(0x81).value), '31323334FFFFFFFF');
  t.equal(hex(pins[1]!.get(0x80).value), '0A', 'ADM1 key reference');
  t.equal(hex(pins[1]!.get(0x81).value), '0102030405060708', 'ADM1 as hex');
  const localPin = pe(upp, PE_TAG.pinCodes, 1).get(0xa1).get(0xa0).all(0x30);
  t.equal(hex(localPin[0]!.get(0x80).value), '0081', 'secondPINAppl1');
  const puks = pe(upp, PE_TAG.pukCodes).get(0xa1).all(0x30);
  t.equal(hex(puks[0]!.get(0x81).value), '3837363534333231');
  t.throws(() => buildProfile({ ...base, pin1: '12a4' }), saip('invalidValue'));
  t.throws(() => buildProfile({ ...base, puk1: '1234567' }), saip('invalidValue'));
});

t.test('bad parameters are SaipError invalidValue', async (t) => {
  t.throws(() => buildProfile({ ...base, ki: KI.subarray(1) }), saip('invalidValue'));
  t.throws(() => buildProfile({ ...base, opc: 'zz' }), saip('invalidValue'));
  t.throws(() => buildProfile({ ...base, iccid: '123' }), saip('invalidValue'));
  t.throws(() => buildProfile({ ...base, imsi: '00101' }), saip('invalidValue'));
  t.throws(() => buildProfile({ ...base, spn: 'A name that is far too long' }), saip('invalidValue'));
});

t.test('every truncation of a profile throws SaipError', async (t) => {
  const upp = buildProfile(base);
  let failures = 0;
  for (let n = 0; n < upp.length; n++) {
    try {
      decodeProfile(upp.subarray(0, n));
      failures++;
      t.fail(`truncated to ${n} bytes decoded`);
    } catch (e) {
      if (!(e instanceof SaipError) || e.code !== 'malformed') {
        failures++;
        t.fail(`truncated to ${n} bytes: ${String(e)}`);
      }
    }
  }
  t.equal(failures, 0, `${upp.length} truncations rejected`);
  t.throws(() => decodeProfile(upp.subarray(0, upp.length - 3)), saip('malformed'));
  const withoutHeader = Buffer.concat(splitProfileElements(upp).slice(1));
  t.throws(() => decodeProfile(withoutHeader), saip('malformed'), 'header missing');
  t.throws(() => decodeProfile(Buffer.concat([upp, Buffer.from([0xa2])])), saip('malformed'), 'trailing garbage');
});

t.test('missing content is SaipError missingElement', async (t) => {
  const parts = splitProfileElements(buildProfile(base));
  const noAka = Buffer.concat(parts.filter((p) => p[0] !== PE_TAG.akaParameter));
  t.throws(() => decodeProfile(noAka), saip('missingElement'));
  const noUsim = Buffer.concat(parts.filter((p) => p[0] !== PE_TAG.usim));
  t.throws(() => decodeProfile(noUsim), saip('missingElement'));
});

t.test('EF.ICCID that disagrees with the header is detected', async (t) => {
  const upp = buildProfile(base);
  const ef = iccidToEf('89000123456789012341');
  const at = upp.indexOf(ef);
  t.ok(at > 0);
  const tampered = Buffer.from(upp);
  iccidToEf('89000123456789012358').copy(tampered, at);
  t.throws(() => decodeProfile(tampered), saip('iccidMismatch'));
});

t.test('header ICCID vs StoreMetadataRequest ICCID (errorReason 13)', async (t) => {
  const upp20 = buildProfile(base);
  const upp19 = buildProfile({ ...base, iccid: '8944123456789012345' });
  t.equal(profileIccidMatchesMetadata(upp20, Buffer.from('98001032547698103214', 'hex')), true);
  t.equal(profileIccidMatchesMetadata(upp19, Buffer.from('984421436587092143F5', 'hex')), true);
  t.equal(profileIccidMatchesMetadata(upp20, '89000123456789012341'), true, 'digits accepted');
  t.equal(profileIccidMatchesMetadata(upp20, Buffer.from('984421436587092143F5', 'hex')), false);
  t.equal(profileIccidMatchesMetadata(upp19, Buffer.from('98001032547698103214', 'hex')), false);
  // the header coding passed as if it were metadata (a classic mix-up) does not match
  t.equal(profileIccidMatchesMetadata(upp20, Buffer.from('89000123456789012341', 'hex')), false);
  t.equal(profileIccidMatchesMetadata(upp20, Buffer.from('9800', 'hex')), false, 'malformed metadata ICCID');
  t.doesNotThrow(() => assertProfileIccidMatchesMetadata(upp20, iccidToEf('89000123456789012341')));
  t.throws(() => assertProfileIccidMatchesMetadata(upp20, iccidToEf('8944123456789012345')), saip('iccidMismatch'));
  t.throws(() => profileHeaderIccid(Buffer.from('B00100', 'hex')), saip('malformed'));
});
