/**
 * Linux /proc readings for the benchmark: CPU time and memory of a process tree (a server and,
 * with a cluster, all its children), of the calling thread, of the whole machine, and the pid of
 * whoever listens on a local TCP port. Every function answers undefined (or an empty result) where
 * /proc is missing or unreadable, so the bench still runs elsewhere, with those figures as n/a.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isIP } from 'node:net';
import { loadavg, networkInterfaces } from 'node:os';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on every Linux build in use). */
export const CLK_TCK = 100;

export interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
  /** utime + stime of the process itself (all its threads), seconds. */
  cpu: number;
  /** cutime + cstime: children that exited and were waited for, seconds. */
  childrenCpu: number;
  /** Start time, clock ticks after boot. */
  startTicks: number;
}

/** Fields of a stat line after "pid (comm) "; comm may contain spaces and parentheses. */
function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17, starttime 22.
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: f[0]!,
    ppid: Number(f[1]),
    cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK,
    childrenCpu: (Number(f[13]) + Number(f[14])) / CLK_TCK,
    startTicks: Number(f[19]),
  };
}

export function procStat(pid: number | 'self' | 'thread-self'): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** CPU seconds of the calling thread only (a worker thread reads its own). */
export function threadCpu(): number | undefined {
  return procStat('thread-self')?.cpu;
}

/** VmRSS and VmHWM (bytes) of one process. */
export function procMemory(pid: number): { rss?: number; hwm?: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => {
      const m = status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'));
      return m ? Number(m[1]) * 1024 : undefined;
    };
    const out: { rss?: number; hwm?: number } = {};
    const rss = kb('VmRSS');
    const hwm = kb('VmHWM');
    if (rss !== undefined) out.rss = rss;
    if (hwm !== undefined) out.hwm = hwm;
    return out;
  } catch {
    return {};
  }
}

/** Every process's stat, by pid (one pass over /proc). */
export function allProcesses(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const d of names) {
    if (!/^\d+$/.test(d)) continue;
    const s = procStat(Number(d));
    if (s) out.set(s.pid, s);
  }
  return out;
}

export interface TreeSample {
  /** The root and every live descendant. */
  pids: number[];
  /**
   * CPU seconds of the tree: every live member's own time plus the time of members that exited and
   * were waited for (cutime/cstime of their parent), so children that come and go are still counted.
   */
  cpu: number;
  /** Sum of VmRSS of the live members (bytes). */
  rss: number;
}

/** The process tree under `root` (cluster primary and workers); undefined when the root is gone. */
export function treeSample(root: number): TreeSample | undefined {
  const all = allProcesses();
  if (!all.has(root)) return undefined;
  const children = new Map<number, number[]>();
  for (const s of all.values()) {
    const list = children.get(s.ppid);
    if (list) list.push(s.pid);
    else children.set(s.ppid, [s.pid]);
  }
  const pids: number[] = [];
  const stack = [root];
  let cpu = 0;
  let rss = 0;
  while (stack.length) {
    const pid = stack.pop()!;
    const s = all.get(pid);
    if (!s) continue;
    pids.push(pid);
    cpu += s.cpu + s.childrenCpu;
    rss += procMemory(pid).rss ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return { pids, cpu, rss };
}

/** Busy CPU seconds of the whole machine (all CPUs) from /proc/stat. */
export function machineBusy(): number | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    return (f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3]! - f[4]!) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** The 1, 5 and 15 minute load averages. */
export function loadAverages(): [number, number, number] {
  const [a, b, c] = loadavg();
  return [a ?? 0, b ?? 0, c ?? 0];
}

/** True when `host` names this machine (loopback, localhost, or one of its interface addresses). */
export function isLocalHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h.startsWith('127.')) return true;
  if (!isIP(h)) return false;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address.toLowerCase() === h));
}

/** Socket inodes in LISTEN state on `port`, from /proc/net/tcp and tcp6. */
function listeningInodes(port: number): Set<string> {
  const out = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (c.length < 10 || c[3] !== '0A') continue;
      const p = parseInt(c[1]!.split(':')[1] ?? '', 16);
      if (p === port && c[9] !== '0') out.add(c[9]!);
    }
  }
  return out;
}

/**
 * The process(es) listening on a local TCP port: of all processes holding the listening socket
 * (a cluster's workers may share it), those whose parent does not hold it too. Only processes
 * whose file descriptors this user may read are found.
 */
export function listeningPids(port: number): number[] {
  const inodes = listeningInodes(port);
  if (!inodes.size) return [];
  const holders = new Set<number>();
  const all = allProcesses();
  for (const pid of all.keys()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) {
          holders.add(pid);
          break;
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  return [...holders].filter((pid) => !holders.has(all.get(pid)?.ppid ?? -1)).sort((a, b) => a - b);
}
