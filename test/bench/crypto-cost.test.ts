import t from 'tap';
import { CRYPTO_STEPS, makeFixture, measureServerCrypto, serverCryptoOfOneDownload } from '../../src/bench/crypto-cost.js';

t.test('the crypto-only download runs and costs a positive time, step by step', async (t) => {
  const r = await measureServerCrypto({ curve: 'P-256', iterations: 20, warmup: 2, uppBytes: 5000, metadataBytes: 130 });
  t.ok(r.cpuMs > 0, `cpuMs ${r.cpuMs}`);
  t.ok(r.wallMs > 0);
  t.ok(r.cpuMsWithoutChain > 0 && r.cpuMsWithoutChain < r.cpuMs);
  t.equal(r.uppBytes, 5000);
  t.equal(r.metadataBytes, 130);
  t.same(r.steps.map((s) => s.step), [...CRYPTO_STEPS]);
  t.ok(r.steps.every((s) => s.ms >= 0));
});

t.test('brainpoolP256r1 too', async (t) => {
  const r = await measureServerCrypto({ curve: 'brainpoolP256r1', iterations: 3, warmup: 1 });
  t.ok(r.cpuMs > 0);
  t.equal(r.curve, 'brainpoolP256r1');
});

t.test('a failing verification is not measured as cheap: it throws', async (t) => {
  const fx = await makeFixture({ curve: 'P-256' });
  serverCryptoOfOneDownload(fx);
  const bad = { ...fx, pirSignature: Buffer.from(fx.pirSignature) };
  bad.pirSignature[5] ^= 1;
  t.throws(() => serverCryptoOfOneDownload(bad), /PIR signature failed/);
});
