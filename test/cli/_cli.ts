/** Runs `mock-smdp` (src/cli.ts through tsx) as a user would, with its exit code, output and time. */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const cliPath = resolve(repo, 'src/cli.ts');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The variables a developer's shell may have set that would change what the CLI does. */
export const CLEAN_ENV: NodeJS.ProcessEnv = {
  PORT: '', HOST: '', SMDP_ADDRESS: '', SMDP_HOSTNAME: '', TLS: '', TLS_PROFILE: '', CERTS_DIR: '', DATA_DIR: '',
  DATABASE_URL: '', ADMIN_TOKEN: '', RESET_ENABLED: '', LOG_LEVEL: '', LOG_FORMAT: '', WORKERS: '', MOCK_SMDP_URL: '',
  DB_CONNECT_TIMEOUT_SECONDS: '', NO_COLOR: '',
};

export function start(args: string[], env: NodeJS.ProcessEnv = {}, cwd = repo): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], {
    cwd,
    env: { ...process.env, ...CLEAN_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs to the end (killed after timeoutMs: then code is null and signal SIGKILL). */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { timeoutMs?: number; cwd?: string } = {}): Promise<Run> {
  const started = Date.now();
  const child = start(args, env, opts.cwd);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The lines of a text, without the final newline's empty one. */
export const lines = (s: string) => s.split('\n').filter((l, i, a) => l !== '' || i < a.length - 1);
