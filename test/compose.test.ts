/**
 * docker-compose.yml, the Dockerfile and .dockerignore agree with each other and with the server
 * (Docker itself is not run here): compose builds the image, mounts no source, sets only variables
 * the server reads, and the image builds dist/, carries every runtime folder package.json lists,
 * and runs `serve` as a non-root user on the port compose publishes.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { defaultConfig } from '../src/config.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const read = (f: string) => readFileSync(resolve(root, f), 'utf8');
const pkg = JSON.parse(read('package.json')) as { files: string[]; engines: { node: string } };

/** Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with the given environment. */
function interpolate(v: string, env: Record<string, string>): string {
  return v.replace(/\$\{(\w+)(?::([-?])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => {
    if (env[name]) return env[name]!;
    if (op === '?') throw new Error(`${name}: ${arg}`);
    return op === '-' ? arg ?? '' : '';
  });
}

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

function dockerfileStages(text: string): Stage[] {
  const stages: Stage[] = [];
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const l of logical) {
    const m = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
    if (m) stages.push({ from: m[1]!, ...(m[2] ? { name: m[2] } : {}), lines: [] });
    else stages.at(-1)!.lines.push(l);
  }
  return stages;
}

t.test('docker-compose.yml builds the image and runs it against PostgreSQL', async (t) => {
  const doc = parse(read('docker-compose.yml'));
  const smdp = doc.services.smdp;
  t.ok(smdp.build === '.' || smdp.build?.context === '.', 'the smdp service is built from the Dockerfile');
  t.notOk(smdp.command, 'the image decides what runs (no npm ci in the checkout)');
  t.notOk(smdp.working_dir, 'no working folder in the checkout');
  for (const v of smdp.volumes ?? []) {
    const source = typeof v === 'string' ? v.split(':')[0] : v.source;
    t.notOk(/^[./~]/.test(source), `volume ${JSON.stringify(v)} is a named volume, not a folder of the host`);
  }
  t.equal(doc.services.postgres.image, 'postgres:15');
  t.equal(smdp.depends_on.postgres.condition, 'service_healthy');

  // ADMIN_TOKEN comes from the environment compose runs in, which the host CLI shares; compose
  // refuses to start without it.
  t.match(smdp.environment.ADMIN_TOKEN, /^\$\{ADMIN_TOKEN:\?.+\}$/);
  t.throws(() => interpolate(smdp.environment.ADMIN_TOKEN, {}), /ADMIN_TOKEN/);
  const env = Object.fromEntries(Object.entries(smdp.environment as Record<string, string>).map(([k, v]) => [k, interpolate(String(v), { ADMIN_TOKEN: 's3cret' })]));
  const cfg = defaultConfig(env);
  t.equal(cfg.port, Number(env.PORT));
  t.equal(cfg.smdpAddress, env.SMDP_ADDRESS);
  t.equal(cfg.databaseUrl, env.DATABASE_URL);
  t.match(cfg.databaseUrl, /^postgres:\/\/.+@postgres:5432\//, 'points at the postgres service');
  t.equal(cfg.adminToken, 's3cret');
  t.equal(cfg.resetEnabled, false, 'reset off unless RESET_ENABLED is exported');
  t.ok(smdp.ports.includes(`${cfg.port}:${cfg.port}`));
  t.ok(doc.volumes && 'certs' in doc.volumes, 'the generated PKI is kept in a named volume');

  const readme = read('README.md');
  t.match(readme, /docker compose up/);
  t.match(readme, /ADMIN_TOKEN/);
  t.match(readme, /docker compose cp smdp:\/app\/certs/, 'the README shows how the host CLI gets the CI to trust');
});

t.test('the Dockerfile: multi-stage, Node 20, dist/ built, runtime files from package.json, non-root, serve', async (t) => {
  const stages = dockerfileStages(read('Dockerfile'));
  t.ok(stages.length >= 2, 'multi-stage');
  const [build, run] = [stages[0]!, stages.at(-1)!];
  const major = /(\d+)/.exec(pkg.engines.node)![1];
  for (const s of stages) t.match(s.from, new RegExp(`^node:${major}[-.]`), `${s.from}: the Node version package.json supports`);
  t.ok(build.lines.some((l) => /^RUN npm ci\b/.test(l)), 'npm ci in the build stage (the lock file decides)');
  t.ok(build.lines.some((l) => /npm run build/.test(l)), 'dist/ is built in the image');
  t.ok(build.lines.some((l) => /npm prune --omit=dev/.test(l)), 'dev dependencies pruned');
  t.notOk(run.lines.some((l) => /^RUN npm (ci|install)/.test(l)), 'nothing installed in the runtime stage');

  const copied = run.lines.filter((l) => /^COPY /.test(l)).map((l) => l.split(/\s+/));
  const fromBuild = copied.filter((w) => w.includes(`--from=${build.name}`)).map((w) => w.at(-1)!.replace(/^\.\//, '').replace(/\/$/, ''));
  for (const f of [...pkg.files, 'node_modules', 'package.json']) t.ok(fromBuild.includes(f), `${f} is in the image`);
  for (const f of pkg.files) t.ok(existsSync(resolve(root, f === 'dist' ? 'src' : f)), `${f} exists in the repository`);
  // The build stage has every source folder the runtime copies out of it.
  const built = build.lines.filter((l) => /^COPY /.test(l)).map((l) => l.split(/\s+/).at(-1)!.replace(/^\.\//, '').replace(/\/$/, ''));
  for (const f of pkg.files.filter((f) => f !== 'dist')) t.ok(built.some((b) => f === b || f.startsWith(`${b}/`)), `${f} is copied into the build stage`);

  const user = run.lines.filter((l) => /^USER /.test(l)).at(-1);
  t.ok(user && !/^USER (root|0)(:|$)/.test(user), `runs as ${user}`);
  t.ok(run.lines.some((l) => /chown node:node certs data/.test(l)), 'the server may write its PKI and database');
  t.match(run.lines.find((l) => /^CMD /.test(l)), /"node", "dist\/src\/cli\.js", "serve"/);
  const doc = parse(read('docker-compose.yml'));
  const exposed = run.lines.find((l) => /^EXPOSE /.test(l))!.split(/\s+/)[1];
  t.ok(doc.services.smdp.ports.includes(`${exposed}:${exposed}`), 'compose publishes the port the image exposes');
  const envLine = run.lines.find((l) => /^ENV PORT=/.test(l))!;
  t.match(envLine, new RegExp(`PORT=${exposed}\\b`));
  t.ok(run.lines.some((l) => /^HEALTHCHECK .*\/health/.test(l)), 'health check on /health');
});

t.test('.dockerignore keeps the checkout\'s state out of the build context', async (t) => {
  const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const f of ['node_modules', 'dist', 'data', 'certs', '.git']) t.ok(ignored.includes(f), `${f} ignored`);
  const stages = dockerfileStages(read('Dockerfile'));
  for (const l of stages[0]!.lines.filter((l) => /^COPY /.test(l) && !/--from/.test(l))) {
    for (const src of l.split(/\s+/).slice(1, -1)) t.notOk(ignored.includes(src.replace(/\/$/, '')), `${src} is not ignored`);
  }
});

/** Does `version` (x.y.z) satisfy an npm engines range? Enough of semver for package-lock's ranges. */
function satisfies(version: string, range: string): boolean {
  const v = version.split('.').map(Number);
  const cmp = (a: number[], b: number[]) => {
    for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
    return 0;
  };
  const comparator = (c: string): boolean => {
    const m = /^(>=|<=|>|<|\^|~|=)?v?(\d+|\*|x)(?:\.(\d+|\*|x))?(?:\.(\d+|\*|x))?$/.exec(c);
    if (!m) throw new Error(`range not understood: ${c}`);
    const [, op = '', ...parts] = m;
    const nums = parts.filter((p) => p !== undefined && p !== '*' && p !== 'x').map(Number);
    const want = [nums[0] ?? 0, nums[1] ?? 0, nums[2] ?? 0];
    if (op === '' || op === '=') return nums.every((n, i) => v[i] === n);
    if (op === '>=') return cmp(v, want) >= 0;
    if (op === '>') return cmp(v, want) > 0;
    if (op === '<=') return cmp(v, want) <= 0;
    if (op === '<') return cmp(v, want) < 0;
    if (op === '^') return cmp(v, want) >= 0 && v[0] === want[0];
    return cmp(v, want) >= 0 && v[0] === want[0] && v[1] === want[1];
  };
  return range.split('||').some((alt) => alt.trim().replace(/([<>=^~]+)\s+/g, '$1').split(/\s+/).every(comparator));
}

t.test('packaging: no dependency wants another Node than this one (no EBADENGINE); src/ imports only declared dependencies, and uses each', async (t) => {
  t.ok(satisfies('20.20.2', '^20.17.0 || >=22.9.0') && !satisfies('20.20.2', '>=22') && satisfies('20.1.0', '20 || >=22') && !satisfies('18.0.0', '>= 18.17'), 'the range check itself');
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean }> };
  const node = process.versions.node;
  const unhappy = Object.entries(lock.packages)
    .filter(([, p]) => p.engines && !Array.isArray(p.engines) && p.engines.node && !satisfies(node, p.engines.node))
    .map(([name, p]) => `${name} wants node ${(p.engines as { node: string }).node}`);
  t.same(unhappy, [], `every locked package accepts Node ${node}`);

  const full = JSON.parse(read('package.json')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const { readdirSync, statSync } = await import('node:fs');
  const sources: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(resolve(root, d))) {
      const p = `${d}/${f}`;
      if (statSync(resolve(root, p)).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) sources.push(read(p));
    }
  };
  walk('src');
  const imported = new Set<string>();
  for (const text of sources) {
    for (const m of text.matchAll(/(?:from\s+|import\()\s*'([^.'][^']*)'/g)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) continue;
      imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  for (const p of imported) t.ok(p in full.dependencies, `${p} (imported by src/) is a dependency`);
  for (const p of Object.keys(full.dependencies)) t.ok(imported.has(p), `${p} is used by src/`);
  for (const p of Object.keys(full.devDependencies)) t.notOk(p in full.dependencies, `${p} is listed once`);
});
