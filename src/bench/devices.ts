/**
 * The simulated devices' credentials: one card state per device (eUICC certificates issued from the
 * PKI folder under its EUM's EIN, or the one eUICC of --euicc-dir) and the CI certificates the
 * bench trusts for TLS.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CurveName } from '../crypto/curves.js';
import { Certificate } from '../crypto/x509.js';
import { certPath, keyPath, layoutFiles } from '../pki/layout.js';
import { eidWithCheckDigits } from '../rsp/identifiers.js';
import { VirtualEuicc } from '../sim/euicc.js';
import type { CardState } from '../sim/state.js';
import { UsageError, type Options } from './options.js';

function pemOf(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

/** The CI certificates of a PKI folder, as PEM (the DP TLS certificate chains up to one of them). */
export function ciPems(dir: string): string[] {
  const out: string[] = [];
  for (const f of Object.values(layoutFiles.ci)) {
    const p = join(dir, f);
    if (existsSync(p)) out.push(pemOf(Certificate.parse(readFileSync(p)).raw));
  }
  return out;
}

/** A random EID under the folder's EUM's first permitted EIN. */
function randomEid(dir: string, curve: CurveName): string {
  let ein = '89049032';
  const f = join(dir, certPath('eum', curve));
  if (existsSync(f)) {
    const p = Certificate.parse(readFileSync(f)).permittedEins[0];
    if (p && /^\d{1,29}$/.test(p)) ein = p;
  }
  let digits = ein;
  while (digits.length < 30) digits += String(randomInt(10));
  return eidWithCheckDigits(digits);
}

/** One card state per device, with embedded credentials (issued once here, or the folder's). */
export async function deviceCards(o: Options, pkiDir: string, count: number): Promise<{ cards: CardState[]; how: string }> {
  if (o.euiccDir) {
    const card = await VirtualEuicc.create({ pkiDir: o.euiccDir, curves: [o.curve], embed: true });
    const state = card.toJSON();
    return { cards: Array.from({ length: count }, () => state), how: `shared EID ${card.eid} from --euicc-dir` };
  }
  if (!existsSync(join(pkiDir, certPath('eum', o.curve))) || !existsSync(join(pkiDir, keyPath('eum', o.curve)))) {
    throw new UsageError(`no ${o.curve} EUM certificate and key in ${pkiDir} to issue eUICC certificates with (--certs DIR or --euicc-dir DIR)`);
  }
  const cards: CardState[] = [];
  const eids = new Set<string>();
  while (cards.length < count) {
    const eid = randomEid(pkiDir, o.curve);
    if (eids.has(eid)) continue;
    eids.add(eid);
    cards.push((await VirtualEuicc.create({ pkiDir, eid, curves: [o.curve] })).toJSON());
  }
  return { cards, how: `${count} eUICC certificates issued from the PKI folder` };
}