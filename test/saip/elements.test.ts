import t from 'tap';
import { decode } from '../../src/der/tlv.js';
import {
  PE_TAG,
  accForImsi,
  ctxTag,
  decodeSpn,
  encodeSpn,
  fileElement,
  peHeader,
  peTypeOfTag,
  pinValue,
  readFile,
  readPeHeader,
} from '../../src/saip/elements.js';

const hex = (b: Buffer) => b.toString('hex').toUpperCase();

t.test('ProfileElement CHOICE tags', async (t) => {
  t.equal(PE_TAG.header, 0xa0);
  t.equal(PE_TAG.pinCodes, 0xa2);
  t.equal(PE_TAG.pukCodes, 0xa3);
  t.equal(PE_TAG.akaParameter, 0xa4);
  t.equal(PE_TAG.securityDomain, 0xa6);
  t.equal(PE_TAG.end, 0xaa);
  t.equal(PE_TAG.mf, 0xb0);
  t.equal(PE_TAG.usim, 0xb3);
  t.equal(PE_TAG['df-5gs'], 0xbc);
  t.equal(PE_TAG['df-5gprose'], 0xbf1f, '[31] needs a two-byte tag');
  t.equal(ctxTag(3, false), 0x83);
  t.equal(peTypeOfTag(0xb8), 'gsm-access');
  t.equal(peTypeOfTag(0xbf7f), 'unknown');
});

t.test('PEHeader', async (t) => {
  t.equal(hex(peHeader(31)), 'A0058000' + '81011F');
  t.equal(hex(peHeader(200, false)), 'A004810200C8');
  const pe = decode(Buffer.concat([Buffer.from([0xaa, 0x07]), peHeader(31)]));
  t.same(readPeHeader(pe), { mandated: true, identification: 31 });
  t.throws(() => peHeader(40000), { name: 'SaipError', code: 'invalidValue' });
});

t.test('File: FCP and content with fill offsets', async (t) => {
  const f = fileElement(0xa4, { fcp: { fileDescriptor: Buffer.from('4121', 'hex'), fileId: Buffer.from('2FE2', 'hex'), efFileSize: 300 }, content: Buffer.from('0102', 'hex') });
  t.equal(hex(f), 'A4' + '12' + 'A10C' + '82024121' + '83022FE2' + '8002012C' + '83020102');
  const info = readFile(decode(f));
  t.equal(info.fcp?.efFileSize, 300);
  t.same(info.content, Buffer.from('0102', 'hex'));
  // 83 AA BB, skip 2, 83 CC -> AA BB FF FF CC
  const gaps = readFile(decode(Buffer.from('A40A' + '8302AABB' + '820102' + '8301CC', 'hex')));
  t.equal(hex(gaps.content!), 'AABBFFFFCC');
  t.equal(readFile(decode(Buffer.from('A600', 'hex'))).content, undefined, 'empty File: template default');
});

t.test('EF.SPN coding', async (t) => {
  t.equal(hex(encodeSpn('GSMA_TEST')), '01' + '47534D41' + '11' + '54455354' + 'FF'.repeat(7), '_ is 0x11 in the GSM alphabet');
  t.equal(decodeSpn(encodeSpn('GSMA_TEST')), 'GSMA_TEST');
  t.equal(decodeSpn(encodeSpn('a@b$c')), 'a@b$c');
  t.equal(hex(encodeSpn('Ü').subarray(0, 5)), '018000DCFF');
  t.equal(decodeSpn(encodeSpn('Zürich')), 'Zürich');
  t.throws(() => encodeSpn('Zürich-Oerlikon'), { name: 'SaipError', code: 'invalidValue' });
});

t.test('PIN values and EF.ACC', async (t) => {
  t.equal(hex(pinValue('0000', 'pin')), '30303030FFFFFFFF');
  t.equal(hex(pinValue('12345678', 'puk')), '3132333435363738');
  t.equal(hex(pinValue('A1B2C3D4E5F60718', 'adm')), 'A1B2C3D4E5F60718');
  t.throws(() => pinValue('123', 'pin'), { name: 'SaipError', code: 'invalidValue' });
  t.throws(() => pinValue('A1B2C3D4E5F60718', 'puk'), { name: 'SaipError', code: 'invalidValue' });
  t.equal(hex(accForImsi('001010000000000')), '0001');
  t.equal(hex(accForImsi('001010000000008')), '0100');
});
