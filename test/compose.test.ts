import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { defaultConfig } from '../src/config.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

t.test('docker-compose.yml parses and runs the README command against PostgreSQL', async (t) => {
  const doc = parse(readFileSync(resolve(root, 'docker-compose.yml'), 'utf8'));
  const smdp = doc.services.smdp;
  t.match(smdp.command, /npm ci && npm start/, 'same start command as the README');
  t.match(readFileSync(resolve(root, 'README.md'), 'utf8'), /npm ci && npm start/);
  t.match(smdp.environment.DATABASE_URL, /^postgres:\/\/.+@postgres:5432\//, 'points at the postgres service');
  t.equal(doc.services.postgres.image, 'postgres:15');
  // Every variable the compose file sets is one the server reads.
  const cfg = defaultConfig(smdp.environment);
  t.equal(cfg.port, Number(smdp.environment.PORT));
  t.equal(cfg.smdpAddress, smdp.environment.SMDP_ADDRESS);
  t.equal(cfg.databaseUrl, smdp.environment.DATABASE_URL);
  t.equal(cfg.adminToken, smdp.environment.ADMIN_TOKEN);
  t.ok(smdp.ports.includes(`${cfg.port}:${cfg.port}`));
});
