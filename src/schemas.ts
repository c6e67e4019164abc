/** The JSON Schemas of schemas/ (request and response bodies), found from src/ or dist/src/. */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvCompiler from '@fastify/ajv-compiler';

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

// ---------------------------------------------------------------- text every schema refuses

/**
 * Where a value holds a string (or a property name) with a NUL (U+0000) or a lone UTF-16 surrogate:
 * its JSON pointer (`/header/functionCallIdentifier`), or undefined when there is none. PostgreSQL
 * refuses NUL in text and turns a lone surrogate into U+FFFD, so neither may reach the database.
 */
export function badTextAt(value: unknown): string | undefined {
  // Nearly every value is fine: look first without building pointers, and work out where only then.
  if (!hasBadText(value)) return undefined;
  // Iterative (a request body may nest arrays a million deep): [value, its pointer] pairs to visit.
  const todo: Array<[unknown, string]> = [[value, '']];
  while (todo.length) {
    const [v, path] = todo.pop()!;
    if (typeof v === 'string') {
      if (isBadText(v)) return path;
    } else if (v !== null && typeof v === 'object') {
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) todo.push([v[i], `${path}/${i}`]);
      } else {
        const keys = Object.keys(v);
        for (const k of keys) if (isBadText(k)) return `${path}/${pointerToken(k)}`;
        for (let i = keys.length - 1; i >= 0; i--) todo.push([(v as Record<string, unknown>)[keys[i]!], `${path}/${pointerToken(keys[i]!)}`]);
      }
    }
  }
  return undefined;
}

/** Whether any string or property name in `value` is bad text (badTextAt without the pointer). */
function hasBadText(value: unknown): boolean {
  const todo: unknown[] = [value];
  while (todo.length) {
    const v = todo.pop();
    if (typeof v === 'string') {
      if (isBadText(v)) return true;
    } else if (v !== null && typeof v === 'object') {
      if (Array.isArray(v)) {
        for (const x of v) todo.push(x);
      } else {
        for (const k in v) {
          if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
          if (isBadText(k)) return true;
          todo.push((v as Record<string, unknown>)[k]);
        }
      }
    }
  }
  return false;
}

// In a `u` regular expression a well-formed surrogate pair is one code point: only lone halves match.
const BAD_TEXT = /[\u0000]|[\uD800-\uDFFF]/u;
// Without `u` the same class is a plain scan (and a one-byte string cannot match its surrogate range):
// a string it finds nothing in needs no closer look.
const MAYBE_BAD_TEXT = /[\u0000\uD800-\uDFFF]/;
export const isBadText = (s: string): boolean => MAYBE_BAD_TEXT.test(s) && BAD_TEXT.test(s);
const pointerToken = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1').replace(/[\u0000-\u001f]|[\uD800-\uDFFF]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** The ajv-style error of a refused text, as Fastify reports schema failures (`err.validation`). */
export const TEXT_KEYWORD = 'text';
export const TEXT_MESSAGE = 'must not contain NUL (U+0000) or unpaired surrogates';

type ValidateFn = ((data: unknown, ctx?: unknown) => unknown) & { errors?: unknown[] | null; schemaEnv?: unknown };
type Compile = (route: { schema: unknown; method: string; url: string; httpPart?: string }) => ValidateFn;

/**
 * Fastify's own validator (its ajv options and formats, @fastify/ajv-compiler) with one rule added to
 * every schema of every route, ES9+ and ES2+ included: no string of a validated request part (body,
 * querystring, params, headers), nor a property name, may hold NUL or a lone surrogate — also in
 * parts a schema leaves untyped (an inventory import's CSV text). A refusal is an ordinary schema
 * failure: `err.validation` names the field, so ES9+/ES2+ answer their SGP.22 format error and the
 * REST routes a 400 (src/error-handler.ts). Install with `app.setValidatorCompiler` before routes.
 * `schemas` gives the instance's shared schemas (app.addSchema), read when the first route compiles.
 */
export function textSafeValidatorCompiler(schemas: () => Record<string, unknown>): Compile {
  let base: Compile | undefined;
  return (route) => {
    base ??= (AjvCompiler() as unknown as (ext: Record<string, unknown>, o: object) => Compile)(schemas(), { customOptions: {}, plugins: [] });
    const validate = base(route);
    const wrapped: ValidateFn = (data, ctx) => {
      const ok = validate(data, ctx);
      if (!ok) {
        wrapped.errors = validate.errors;
        return false;
      }
      const at = badTextAt(data);
      if (at === undefined) {
        wrapped.errors = null;
        return true;
      }
      wrapped.errors = [{ keyword: TEXT_KEYWORD, instancePath: at, schemaPath: '#', params: {}, message: TEXT_MESSAGE }];
      return false;
    };
    // Fastify hands ajv validators the request as parent data (root coercion of querystrings).
    if (validate.schemaEnv) wrapped.schemaEnv = validate.schemaEnv;
    return wrapped;
  };
}
