/** The JSON Schemas of schemas/ (request and response bodies), found from src/ or dist/src/. */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function schemasDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const c of [resolve(here, '../schemas'), resolve(here, '../../schemas')]) if (existsSync(join(c, 'es9plus'))) return c;
  throw new Error('schemas folder not found');
}

export type JsonSchema = Record<string, unknown> & { $id: string };

export function loadSchemas(area: string): Map<string, JsonSchema> {
  const dir = join(schemasDir(), area);
  const out = new Map<string, JsonSchema>();
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    out.set(f.replace(/\.json$/, ''), JSON.parse(readFileSync(join(dir, f), 'utf8')) as JsonSchema);
  }
  return out;
}
