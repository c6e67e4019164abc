import t from 'tap';
import {
  IdentifierError,
  assertEid,
  eidCheckDigits,
  eidChecksumOk,
  eidWithCheckDigits,
  iccidFromEf,
  iccidFromHeader,
  iccidLuhnOk,
  iccidToEf,
  iccidToHeader,
  imsiFromEf,
  imsiToEf,
  isEid,
  luhn,
  luhnDigit,
  normaliseIccid,
  withLuhn,
} from '../../src/rsp/identifiers.js';

const hex = (b: Buffer) => b.toString('hex').toUpperCase();
const code = (c: string) => ({ name: 'IdentifierError', code: c });

t.test('normaliseIccid accepts 19/20 digits with an optional F filler', async (t) => {
  t.equal(normaliseIccid('89000123456789012341'), '89000123456789012341');
  t.equal(normaliseIccid('8944123456789012345'), '8944123456789012345');
  t.equal(normaliseIccid('8944123456789012345F'), '8944123456789012345');
  t.equal(normaliseIccid('8944123456789012345f'), '8944123456789012345');
  t.equal(normaliseIccid(' 8900 0123 4567 8901 2341 '), '89000123456789012341');
  for (const bad of ['894412345678901234', '890001234567890123412', '89000123456789012341F', '8900012345678901234X', 'F944123456789012345', '']) {
    t.throws(() => normaliseIccid(bad), code('invalidIccid'), JSON.stringify(bad));
  }
});

t.test('normaliseIccid can require the Luhn digit', async (t) => {
  t.equal(normaliseIccid('89000123456789012341', { luhn: true }), '89000123456789012341');
  t.throws(() => normaliseIccid('89000123456789012342', { luhn: true }), code('invalidIccid'));
  t.equal(iccidLuhnOk('89000123456789012341'), true);
  t.equal(iccidLuhnOk('8944123456789012345'), false);
});

t.test('ICCID codings match the notes examples', async (t) => {
  t.equal(hex(iccidToHeader('89000123456789012341')), '89000123456789012341');
  t.equal(hex(iccidToEf('89000123456789012341')), '98001032547698103214');
  t.equal(hex(iccidToEf('8944123456789012345')), '98442143658709214' + '3F5');
  t.equal(hex(iccidToHeader('8944123456789012345')), '8944123456789012345F');
  t.equal(hex(iccidToEf('8944123456789012345F')), '9844214365870921' + '43F5');

  t.equal(iccidFromEf(Buffer.from('98001032547698103214', 'hex')), '89000123456789012341');
  t.equal(iccidFromEf(Buffer.from('984421436587092143F5', 'hex')), '8944123456789012345');
  t.equal(iccidFromHeader(Buffer.from('89000123456789012341', 'hex')), '89000123456789012341');
  t.equal(iccidFromHeader(Buffer.from('8944123456789012345F', 'hex')), '8944123456789012345');
});

t.test('ICCID decoders reject bad codings', async (t) => {
  t.throws(() => iccidFromEf(Buffer.from('9800103254769810F214', 'hex')), code('invalidIccid'), 'F inside');
  t.throws(() => iccidFromEf(Buffer.from('980010325476981032', 'hex')), code('invalidIccid'), '9 bytes');
  t.throws(() => iccidFromHeader(Buffer.from('8944123456789012345A', 'hex')), code('invalidIccid'), 'non-BCD');
  // the two codings are not interchangeable: a header-coded value read as EF gives other digits
  t.not(iccidFromEf(iccidToHeader('89000123456789012341')), '89000123456789012341');
});

t.test('Luhn check and check digit', async (t) => {
  t.equal(luhn('79927398713'), true);
  t.equal(luhn('79927398710'), false);
  t.equal(luhn('7992739871x'), false);
  t.equal(luhnDigit('7992739871'), '3');
  t.equal(withLuhn('8900012345678901234'), '89000123456789012341');
  for (let i = 0; i < 50; i++) {
    const prefix = `8949${String(i * 7919).padStart(14, '0')}`;
    const full = withLuhn(prefix);
    t.ok(luhn(full), full);
    const wrong = full.slice(0, -1) + String((Number(full.at(-1)) + 1) % 10);
    t.notOk(luhn(wrong), wrong);
  }
  t.throws(() => luhnDigit('12a'), code('invalidDigits'));
});

t.test('IMSI EF coding', async (t) => {
  t.equal(hex(imsiToEf('001010123456063')), '080910101032540636');
  t.equal(imsiFromEf(Buffer.from('080910101032540636', 'hex')), '001010123456063');
  // even number of digits: parity nibble 1 and an F filler in the last byte
  t.equal(hex(imsiToEf('00101012345678')), '08011010103254' + '76F8');
  t.equal(imsiFromEf(imsiToEf('00101012345678')), '00101012345678');
  // short IMSI: remaining bytes of the 9-byte EF are FF
  t.equal(hex(imsiToEf('2620112')), '0429261021FFFFFFFF');
  t.equal(imsiFromEf(imsiToEf('2620112')), '2620112');
  for (const bad of ['12345', '0010101234560631', '00101012345606a']) t.throws(() => imsiToEf(bad), code('invalidImsi'), bad);
  t.throws(() => imsiFromEf(Buffer.from('080210101032540636', 'hex')), code('invalidImsi'), 'type nibble');
  t.throws(() => imsiFromEf(Buffer.from('0909101010325406363F', 'hex')), code('invalidImsi'), 'length byte 9');
  t.throws(() => imsiFromEf(Buffer.from('0809101010325406', 'hex')), code('invalidImsi'), 'shorter than its length');
});

t.test('EID format and check digits', async (t) => {
  const eid = '89049032123451234512345678901235';
  t.equal(isEid(eid), true);
  t.equal(isEid(eid.slice(1)), false);
  t.equal(isEid(`${eid.slice(0, -1)}A`), false);
  t.equal(eidChecksumOk(eid), true);
  t.equal(eidChecksumOk(`${eid.slice(0, -1)}6`), false);
  t.equal(isEid(`${eid.slice(0, -1)}6`), true, 'format check is separate from the checksum');
  t.equal(eidCheckDigits(eid.slice(0, 30)), '35');
  t.equal(eidWithCheckDigits(eid.slice(0, 30)), eid);
  // 97 prefixes covering every remainder mod 97, so check digits 01..98 edge cases (97, 98) all occur
  const seen = new Set<string>();
  for (let i = 0; i < 97; i++) {
    const prefix = `${'89049032'.padEnd(24, '0')}${String(i * 1237).padStart(6, '0')}`;
    const full = eidWithCheckDigits(prefix);
    seen.add(full.slice(30));
    if (full.length !== 32 || !eidChecksumOk(full)) t.fail(`check digits for ${prefix}`);
  }
  t.equal(seen.size, 97);
  t.ok(seen.has('98') && seen.has('97') && seen.has('02'));
  t.throws(() => eidCheckDigits('123'), code('invalidEid'));
  t.equal(assertEid(eid), eid);
  t.throws(() => assertEid(`${eid.slice(0, -1)}6`), code('invalidEid'));
});
