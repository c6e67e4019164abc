#!/usr/bin/env node
/**
 * Self time by function and by module of a V8 CPU profile (node --cpu-prof), optionally only the
 * samples of a time window (the bench's timed run: V8's profile clock and process.hrtime are both
 * CLOCK_MONOTONIC on Linux, in µs here).
 *
 * Run alone: node dist/src/bench/profile.js FILE.cpuprofile… [--top N] [--json] (several files: added up)
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Sampled time in the window, ms: busy (not idle) and idle. */
  busyMs: number;
  idleMs: number;
  /** Whether the window lay inside the profile (false: the whole profile was summarised). */
  windowed: boolean;
  functions: Array<{ name: string; where: string; module: string; selfMs: number; share: number }>;
  modules: Array<{ module: string; selfMs: number; share: number }>;
}

/**
 * The module a frame belongs to: a package under node_modules (by name), a project file (its path
 * from src/ or test/), a Node built-in (node:…), or V8's pseudo-frames ((garbage collector),
 * (program): native code, the runtime and whatever has no JS frame).
 */
export function moduleOf(f: CallFrame): string {
  const url = f.url;
  if (!url) return f.functionName.startsWith('(') ? f.functionName : '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return url;
  const m = /\/(?:dist\/)?((?:src|test)\/.*)$/.exec(url);
  return m ? m[1]! : url.replace(/^file:\/\//, '');
}

/**
 * Self time of the profiles (one per process, e.g. a cluster's primary and workers) added up; with
 * fromUs/toUs, only samples in that window, if it lies within every profile (else all samples).
 */
export function summarizeProfile(profiles: CpuProfile | CpuProfile[], opts: { fromUs?: number; toUs?: number; top?: number } = {}): ProfileSummary {
  const list = Array.isArray(profiles) ? profiles : [profiles];
  const windowed = opts.fromUs !== undefined && opts.toUs !== undefined && list.every((p) => opts.fromUs! >= p.startTime && opts.toUs! <= p.endTime);
  const lo = windowed ? opts.fromUs! : -Infinity;
  const hi = windowed ? opts.toUs! : Infinity;
  const frames: Array<[CallFrame, number]> = [];
  for (const p of list) {
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const selfUs = new Map<number, number>();
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i] ?? 0;
      // A sample stands for the time until the next one.
      const d = p.timeDeltas[i + 1] ?? 0;
      if (t < lo || t > hi) continue;
      selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + d);
    }
    for (const [id, us] of selfUs) {
      const cf = byId.get(id)?.callFrame;
      if (cf) frames.push([cf, us]);
    }
  }
  let busy = 0;
  let idle = 0;
  const fn = new Map<string, { name: string; where: string; module: string; us: number }>();
  const mod = new Map<string, number>();
  for (const [cf, us] of frames) {
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const module = moduleOf(cf);
    const name = cf.functionName || '(anonymous)';
    const where = cf.url ? `${module}:${cf.lineNumber + 1}` : module;
    const key = `${name}@${where}`;
    const e = fn.get(key) ?? { name, where, module, us: 0 };
    e.us += us;
    fn.set(key, e);
    mod.set(module, (mod.get(module) ?? 0) + us);
  }
  const top = opts.top ?? 20;
  const share = (us: number) => (busy > 0 ? us / busy : 0);
  return {
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    windowed,
    functions: [...fn.values()].sort((a, b) => b.us - a.us).slice(0, top).map((e) => ({ name: e.name, where: e.where, module: e.module, selfMs: e.us / 1000, share: share(e.us) })),
    modules: [...mod.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([module, us]) => ({ module, selfMs: us / 1000, share: share(us) })),
  };
}

export function readProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}

/** Text lines of a summary (the bench prints these). */
export function formatProfile(s: ProfileSummary, indent = '  '): string[] {
  const pct = (x: number) => `${(100 * x).toFixed(1).padStart(5)}%`;
  return [
    `${indent}${s.busyMs.toFixed(0)} ms sampled busy${s.idleMs ? `, ${s.idleMs.toFixed(0)} ms idle` : ''}${s.windowed ? ' (timed run only)' : ' (whole profile)'}`,
    `${indent}self time by module:`,
    ...s.modules.map((m) => `${indent}  ${pct(m.share)} ${m.selfMs.toFixed(0).padStart(6)} ms  ${m.module}`),
    `${indent}self time by function:`,
    ...s.functions.map((f) => `${indent}  ${pct(f.share)} ${f.selfMs.toFixed(0).padStart(6)} ms  ${f.name}  ${f.where}`),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  try {
    const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, json: { type: 'boolean' } } });
    if (!positionals.length) throw new Error('usage: node dist/src/bench/profile.js FILE.cpuprofile… [--top N] [--json]');
    const top = values.top === undefined ? 20 : Number(values.top);
    if (!Number.isInteger(top) || top < 1) throw new Error(`--top must be an integer >= 1: ${values.top}`);
    const s = summarizeProfile(positionals.map(readProfile), { top });
    console.log(values.json ? JSON.stringify(s, null, 2) : formatProfile(s, '').join('\n'));
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 2;
  }
}
