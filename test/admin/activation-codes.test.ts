import { createHash } from 'node:crypto';
import t from 'tap';
import jsqrModule from 'jsqr';
import { PNG } from 'pngjs';
import QRCode from 'qrcode';
import { startWorld } from '../helpers/world.js';
import { parseActivationCode } from '../../src/rsp/activation-code.js';

// jsqr is CommonJS: its module.exports is the decoder function (also as .default).
const jsQR = ((jsqrModule as unknown as { default?: unknown }).default ?? jsqrModule) as unknown as typeof import('jsqr').default;

function decodePng(png: Buffer) {
  const img = PNG.sync.read(png);
  return jsQR(new Uint8ClampedArray(img.data.buffer, img.data.byteOffset, img.data.byteLength), img.width, img.height);
}

t.test('activation codes: text, PNG and SVG QR codes, 404 and 400', async (t) => {
  const w = await startWorld(t, { smdpAddress: 'smdp.example.com:8443' });
  const plain = await w.order({});
  const withCc = await w.order({ confirmationCode: '4711' });

  const text = await w.app.inject({ method: 'GET', url: `/admin/activation-codes/${plain.matchingId}` });
  t.equal(text.statusCode, 200);
  t.match(text.headers['content-type'], /^text\/plain/);
  t.equal(text.body, `LPA:1$SMDP.EXAMPLE.COM:8443$${plain.matchingId}`);

  const cc = await w.app.inject({ method: 'GET', url: `/admin/activation-codes/${withCc.matchingId.toLowerCase()}` });
  t.equal(cc.body, `LPA:1$SMDP.EXAMPLE.COM:8443$${withCc.matchingId}$$1`, 'CC flag with an empty OID field');
  t.same(parseActivationCode(cc.body), { smdpAddress: 'SMDP.EXAMPLE.COM:8443', matchingId: withCc.matchingId, confirmationCodeRequired: true });

  const oid = await w.app.inject({ method: 'GET', url: `/admin/activation-codes/${withCc.matchingId}?oid=1` });
  t.equal(oid.body, `LPA:1$SMDP.EXAMPLE.COM:8443$${withCc.matchingId}$${w.pki.smdpOid}$1`);
  const oidNoCc = await w.app.inject({ method: 'GET', url: `/admin/activation-codes/${plain.matchingId}?oid=1` });
  t.equal(oidNoCc.body, `LPA:1$SMDP.EXAMPLE.COM:8443$${plain.matchingId}$${w.pki.smdpOid}`);

  // PNG decodes back to exactly the text, for every error-correction level, at the version that level needs
  const versions: Record<string, number> = {};
  for (const ecl of ['L', 'M', 'Q', 'H'] as const) {
    const r = await w.app.inject({ method: 'GET', url: `/admin/activation-codes/${withCc.matchingId}.png?ecl=${ecl}&oid=1` });
    t.equal(r.statusCode, 200, ecl);
    t.equal(r.headers['content-type'], 'image/png');
    t.same(r.rawPayload.subarray(0, 8), Buffer.from('89504e470d0a1a0a', 'hex'), 'PNG signature');
    const qr = decodePng(r.rawPayload);
    t.ok(qr, `QR found (${ecl})`);
    t.equal(qr!.data, oid.body, `decodes to the activation code (${ecl})`);
    t.equal(qr!.version, QRCode.create(oid.body, { errorCorrectionLevel: ecl }).version, `version fits ECL ${ecl}`);
    versions[ecl] = qr!.version;
  }
  t.ok(versions.H! > versions.L!, `higher ECL, bigger symbol (${JSON.stringify(versions)})`);
  // default M, and scale changes the pixel size but not the content
  const dflt = await w.app.inject({ method: 'GET', url: `/admin/activation-codes/${plain.matchingId}.png` });
  const small = await w.app.inject({ method: 'GET', url: `/admin/activation-codes/${plain.matchingId}.png?scale=3` });
  t.equal(decodePng(dflt.rawPayload)!.data, text.body);
  t.equal(decodePng(small.rawPayload)!.data, text.body);
  t.equal(decodePng(dflt.rawPayload)!.version, QRCode.create(text.body, { errorCorrectionLevel: 'M' }).version);
  t.ok(PNG.sync.read(small.rawPayload).width < PNG.sync.read(dflt.rawPayload).width);

  // SVG: an XML document with a path, differing by ECL
  const svgs: string[] = [];
  for (const ecl of ['L', 'H']) {
    const svg = await w.app.inject({ method: 'GET', url: `/admin/activation-codes/${plain.matchingId}.svg?ecl=${ecl}` });
    t.equal(svg.statusCode, 200);
    t.equal(svg.headers['content-type'], 'image/svg+xml');
    t.match(svg.body, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" [^>]*viewBox="0 0 \d+ \d+"[^>]*>.*<path [^>]*d="M[^"]+"[^>]*\/>.*<\/svg>\s*$/s);
    t.equal((svg.body.match(/</g) ?? []).length, (svg.body.match(/>/g) ?? []).length, 'balanced tags');
    svgs.push(svg.body);
  }
  t.not(createHash('sha256').update(svgs[0]!).digest('hex'), createHash('sha256').update(svgs[1]!).digest('hex'));
  const scaled = await w.app.inject({ method: 'GET', url: `/admin/activation-codes/${plain.matchingId}.svg?scale=5` });
  t.match(scaled.body, /^<svg [^>]*width="\d+" height="\d+"/);

  for (const u of ['/admin/activation-codes/UNKNOWN-ID', '/admin/activation-codes/UNKNOWN-ID.png', '/admin/activation-codes/UNKNOWN-ID.svg']) {
    const r = await w.app.inject({ method: 'GET', url: u });
    t.equal(r.statusCode, 404, u);
    t.match(r.json(), { error: 'notFound', message: /UNKNOWN-ID/ }, u);
  }
  t.equal((await w.app.inject({ method: 'GET', url: '/admin/activation-codes/bad_id' })).statusCode, 400);
  t.equal((await w.app.inject({ method: 'GET', url: `/admin/activation-codes/${plain.matchingId}.png?ecl=X` })).statusCode, 400);
});

t.test('openapi.json describes ES9+ and admin routes with their schemas and tags', async (t) => {
  const w = await startWorld(t);
  const r = await w.app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(r.statusCode, 200);
  const doc = r.json() as { openapi: string; paths: Record<string, Record<string, { tags?: string[]; requestBody?: { content: Record<string, { schema: { required?: string[]; properties?: Record<string, unknown> } }> } }>> };
  t.match(doc.openapi, /^3\./);
  const ia = doc.paths['/gsma/rsp2/es9plus/initiateAuthentication']?.post;
  t.ok(ia, 'initiateAuthentication listed');
  t.same(ia!.tags, ['ES9+']);
  t.same(ia!.requestBody!.content['application/json']!.schema.required, ['euiccChallenge', 'euiccInfo1', 'smdpAddress']);
  t.ok(doc.paths['/admin/orders']?.post, 'POST /admin/orders');
  t.ok(doc.paths['/admin/orders']?.get, 'GET /admin/orders');
  t.same(doc.paths['/admin/orders']!.get!.tags, ['admin: orders']);
  t.ok(doc.paths['/admin/orders']!.post!.requestBody!.content['application/json']!.schema.properties!.matchingId);
  t.ok(doc.paths['/admin/inventory/import']!.post!.requestBody!.content['application/json']!.schema.required!.includes('format'));
  t.ok(doc.paths['/admin/activation-codes/{matchingId}.png']?.get);
  t.notOk(doc.paths['/openapi.json'], 'the spec route itself is hidden');
});
