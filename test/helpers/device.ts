/** A simulated device (virtual eUICC with a fresh eUICC certificate + LPA) for a test world. */
import type { CurveName } from '../../src/crypto/curves.js';
import { eidWithCheckDigits } from '../../src/rsp/identifiers.js';
import { VirtualEuicc } from '../../src/sim/euicc.js';
import { Lpa } from '../../src/sim/lpa.js';
import type { World } from './world.js';

let counter = 100;

export async function newDevice(w: Pick<World, 'pkiDir' | 'http'>, curve?: CurveName) {
  const eid = eidWithCheckDigits(`8904903200000000${process.pid.toString().padStart(7, '0').slice(-7)}${String(counter++).padStart(7, '0')}`);
  const card = await VirtualEuicc.create({ pkiDir: w.pkiDir, eid, ...(curve ? { curves: [curve] } : {}) });
  return { card, lpa: new Lpa(card, { http: w.http }) };
}
