import t from 'tap';
import { decode, tlv } from '../../src/der/tlv.js';
import { RspError } from '../../src/rsp/errors.js';
import {
  decodeEuiccInfo1,
  decodeEuiccInfo2,
  encodeEuiccInfo1,
  encodeEuiccInfo2,
  RSP_CAPABILITY,
  type EuiccInfo2,
} from '../../src/rsp/euiccinfo.js';

const SKI_GSMA = Buffer.from('81370F5125D0B1D408D4C3B232E6D25E795BEBFB', 'hex');
const SKI_TEST = Buffer.from('F54172BDF98A95D65CBEB88A38A1C11D800A85C3', 'hex');
const v = (s: string) => Buffer.from(s, 'hex');

const info2: Omit<EuiccInfo2, 'raw'> = {
  profileVersion: v('020301'),
  svn: v('020202'),
  euiccFirmwareVer: v('010000'),
  extCardResource: v('810100820400 0f4240 83021000'.replace(/ /g, '')),
  uiccCapability: [1, 2, 4, 5, 6, 10, 11, 13, 14, 16, 17],
  ts102241Version: v('030005'),
  globalPlatformVersion: v('020301'),
  rspCapability: [RSP_CAPABILITY.additionalProfile, RSP_CAPABILITY.testProfileSupport],
  ciPkIdsForVerification: [SKI_GSMA, SKI_TEST],
  ciPkIdsForSigning: [SKI_GSMA],
  euiccCategory: 2,
  forbiddenProfilePolicyRules: [1],
  ppVersion: v('000201'),
  sasAccreditationNumber: 'GI-BA-UP-0419',
  certificationDataObject: { platformLabel: '1.2.840.1234567/myPlatformLabel', discoveryBaseUrl: 'https://mydiscoveryserver.example' },
};

t.test('EUICCInfo1 matches the real-card layout of the notes', async (t) => {
  const enc = encodeEuiccInfo1({ svn: v('020300'), ciPkIdsForVerification: [SKI_GSMA], ciPkIdsForSigning: [SKI_GSMA] });
  t.equal(enc.toString('hex').toUpperCase(), `BF2035820302030 0A9160414${SKI_GSMA.toString('hex')}AA160414${SKI_GSMA.toString('hex')}`.replace(/ /g, '').toUpperCase());
  const d = decodeEuiccInfo1(enc);
  t.same(d.raw, enc);
  t.same(d.svn, v('020300'));
  t.same(d.ciPkIdsForVerification, [SKI_GSMA]);
  t.same(d.ciPkIdsForSigning, [SKI_GSMA]);
});

t.test('EUICCInfo1 round trip with several CIs and empty lists', async (t) => {
  for (const i of [
    { svn: v('020200'), ciPkIdsForVerification: [SKI_GSMA, SKI_TEST], ciPkIdsForSigning: [SKI_TEST] },
    { svn: v('030100'), ciPkIdsForVerification: [], ciPkIdsForSigning: [] },
  ]) {
    const d = decodeEuiccInfo1(encodeEuiccInfo1(i));
    t.same({ svn: d.svn, ciPkIdsForVerification: d.ciPkIdsForVerification, ciPkIdsForSigning: d.ciPkIdsForSigning }, i);
  }
});

t.test('EUICCInfo1 decoder is strict about what it needs, tolerant of extras', async (t) => {
  const svn = tlv(0x82, v('020200'));
  const a9 = tlv(0xa9, tlv(0x04, SKI_GSMA));
  const aa = tlv(0xaa, tlv(0x04, SKI_GSMA));
  t.throws(() => decodeEuiccInfo1(tlv(0xbf20, a9, aa)), { name: 'RspError', code: 'malformed', message: /svn/ });
  t.throws(() => decodeEuiccInfo1(tlv(0xbf20, svn, a9)), { code: 'malformed', message: /ForSigning/ });
  t.throws(() => decodeEuiccInfo1(tlv(0xbf20, tlv(0x82, v('0202')), a9, aa)), { code: 'malformed', message: /svn/ });
  t.throws(() => decodeEuiccInfo1(tlv(0xbf20, svn, tlv(0xa9, tlv(0x05, SKI_GSMA)), aa)), { code: 'malformed' });
  t.throws(() => decodeEuiccInfo1(tlv(0xbf22, svn, a9, aa)), { code: 'malformed', message: /BF20/ });
  t.throws(() => decodeEuiccInfo1(Buffer.concat([tlv(0xbf20, svn, a9, aa), Buffer.from([0])])), RspError);
  const withExtra = tlv(0xbf20, svn, a9, aa, tlv(0x9f70, v('01')));
  t.same(decodeEuiccInfo1(withExtra).ciPkIdsForSigning, [SKI_GSMA]);
  t.same(decodeEuiccInfo1(withExtra).raw, withExtra);
});

t.test('EUICCInfo2 round trip, full and minimal', async (t) => {
  const enc = encodeEuiccInfo2(info2);
  const d = decodeEuiccInfo2(enc);
  t.same(d.raw, enc);
  const { raw: _raw, ...rest } = d;
  t.same(rest, info2);
  t.same(encodeEuiccInfo2(d), enc);

  const minimal: Omit<EuiccInfo2, 'raw'> = {
    profileVersion: v('020100'),
    svn: v('020200'),
    euiccFirmwareVer: v('040000'),
    extCardResource: Buffer.alloc(0),
    uiccCapability: [],
    rspCapability: [0],
    ciPkIdsForVerification: [SKI_TEST],
    ciPkIdsForSigning: [SKI_TEST],
    ppVersion: v('000001'),
    sasAccreditationNumber: '',
  };
  const m = decodeEuiccInfo2(encodeEuiccInfo2(minimal));
  const { raw: _r, ...mrest } = m;
  t.strictSame(mrest, minimal);
});

t.test('EUICCInfo2 field tags follow the notes (81..88, A9, AA, 8B, 99, 04, 0C, AC)', async (t) => {
  const enc = encodeEuiccInfo2(info2);
  const order = decode(decodeEuiccInfo2(enc).raw).children().map((c) => c.tag);
  t.same(order, [0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0xa9, 0xaa, 0x8b, 0x99, 0x04, 0x0c, 0xac]);
  // rspCapability bits 0 and 3: 04 90 (4 unused bits).
  t.ok(enc.includes(v('88020490')));
});

t.test('EUICCInfo2 missing mandatory element names it', async (t) => {
  const enc = encodeEuiccInfo2(info2);
  const kids = decode(enc).children();
  for (const [tag, name] of [
    [0x81, /profileVersion/],
    [0x88, /rspCapability/],
    [0x04, /ppVersion/],
    [0x0c, /sasAcreditationNumber/],
    [0xaa, /ForSigning/],
  ] as const) {
    const without = tlv(0xbf22, ...kids.filter((k) => k.tag !== tag).map((k) => k.raw));
    t.throws(() => decodeEuiccInfo2(without), { code: 'malformed', message: name });
  }
});
