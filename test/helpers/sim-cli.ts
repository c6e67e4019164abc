/** Runs `mock-smdp sim …` in the test process (simCommand), with what it prints captured. */
import { simCommand } from '../../src/sim/cli.js';

export interface SimRun {
  code: number;
  out: string;
  err: string;
}

/** `args` then `base` (options every call of a test shares); stdout and stderr lines joined. */
export async function runSim(args: string[], base: string[] = []): Promise<SimRun> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    return { code: await simCommand([...args, ...base]), out: out.join('\n'), err: err.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
  }
}
