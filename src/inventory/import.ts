/**
 * Inventory import: CSV (header iccid,imsi,ki,opc[,type]) or JSON (array of objects) into Available
 * profiles. Every row is checked before anything is written; one bad row or one duplicate rejects
 * the whole import, which then runs in one transaction.
 */
import type { Database } from '../db/db.js';
import { luhn } from '../rsp/identifiers.js';
import {
  HEX32_RE, InventoryError, MAX_ROWS, TYPE_NAME_RE, insertRows, invalidRows,
  type CheckedRow, type ImportOptions, type InventoryRow,
} from './store.js';

export type ImportFormat = 'csv' | 'json';

function checkRows(rows: unknown[], opts: ImportOptions): CheckedRow[] {
  if (!Array.isArray(rows)) throw new InventoryError('invalid', 'profiles must be an array');
  if (rows.length === 0) throw new InventoryError('invalid', 'no profiles to import');
  if (rows.length > MAX_ROWS) throw new InventoryError('invalid', `at most ${MAX_ROWS} profiles per import`);
  const problems: string[] = [];
  const out: CheckedRow[] = [];
  const seenIccid = new Map<string, number>();
  const seenImsi = new Map<string, number>();
  rows.forEach((raw, i) => {
    const n = i + 1;
    const bad = (msg: string) => problems.push(`row ${n}: ${msg}`);
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return bad('not an object');
    const r = raw as Record<string, unknown>;
    const unknown = Object.keys(r).filter((k) => !['iccid', 'imsi', 'ki', 'opc', 'type'].includes(k));
    if (unknown.length) return bad(`unknown field(s) ${unknown.join(', ')}`);
    const str = (k: string) => (typeof r[k] === 'string' ? (r[k] as string).trim() : typeof r[k] === 'number' ? String(r[k]) : undefined);
    let iccid = str('iccid')?.replace(/[\s-]/g, '');
    if (iccid && /^\d{19}[fF]$/.test(iccid)) iccid = iccid.slice(0, 19);
    const imsi = str('imsi');
    const ki = str('ki');
    const opc = str('opc');
    const type = str('type') || opts.type;
    const before = problems.length;
    if (!iccid || !/^\d{19,20}$/.test(iccid)) bad(`ICCID must be 19 or 20 digits: ${iccid ?? '(missing)'}`);
    else if (opts.luhn && !luhn(iccid)) bad(`ICCID ${iccid} fails the Luhn check`);
    if (!imsi || !/^\d{6,15}$/.test(imsi)) bad(`IMSI must be 6 to 15 digits: ${imsi ?? '(missing)'}`);
    if (!ki || !HEX32_RE.test(ki)) bad('Ki must be 32 hex digits');
    if (!opc || !HEX32_RE.test(opc)) bad('OPc must be 32 hex digits');
    if (!TYPE_NAME_RE.test(type)) bad(`bad profile type name ${type}`);
    if (problems.length > before) return;
    if (seenIccid.has(iccid!)) return bad(`duplicate ICCID ${iccid} (also row ${seenIccid.get(iccid!)})`);
    if (seenImsi.has(imsi!)) return bad(`duplicate IMSI ${imsi} (also row ${seenImsi.get(imsi!)})`);
    seenIccid.set(iccid!, n);
    seenImsi.set(imsi!, n);
    out.push({ iccid: iccid!, imsi: imsi!, ki: Buffer.from(ki!, 'hex'), opc: Buffer.from(opc!, 'hex'), type });
  });
  if (problems.length) throw invalidRows(problems, rows.length);
  return out;
}

/** Imports rows (objects with iccid, imsi, ki, opc[, type]) as Available profiles: all or nothing. */
export async function importProfiles(db: Database, rows: unknown[], opts: ImportOptions): Promise<{ imported: number; iccids: string[] }> {
  const checked = checkRows(rows, opts);
  await db.tx((q) => insertRows(q, checked, opts.operator, 'import'));
  return { imported: checked.length, iccids: checked.map((r) => r.iccid) };
}

// ---------------------------------------------------------------- CSV / JSON parsing

/** Splits one CSV line (RFC 4180 quoting, no embedded newlines). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"' && cur.trim() === '') (cur = ''), (quoted = true);
    else if (c === ',' || c === ';') out.push(cur.trim()), (cur = '');
    else cur += c;
  }
  out.push(cur.trim());
  return out;
}

/**
 * Parses inventory CSV: a header line naming the columns iccid, imsi, ki, opc and optionally type
 * (any order, case-insensitive), then one profile per line. Blank lines and `#` comments are skipped.
 */
export function parseCsv(text: string): InventoryRow[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l, i) => ({ l, n: i + 1 })).filter(({ l }) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (!lines.length) throw new InventoryError('invalid', 'CSV is empty');
  const header = csvFields(lines[0]!.l).map((h) => h.toLowerCase());
  const allowed = ['iccid', 'imsi', 'ki', 'opc', 'type'];
  const unknown = header.filter((h) => !allowed.includes(h));
  if (unknown.length) throw new InventoryError('invalid', `CSV header has unknown column(s) ${unknown.join(', ')}; expected iccid,imsi,ki,opc[,type]`);
  for (const need of ['iccid', 'imsi', 'ki', 'opc']) if (!header.includes(need)) throw new InventoryError('invalid', `CSV header lacks column ${need}; expected iccid,imsi,ki,opc[,type]`);
  if (new Set(header).size !== header.length) throw new InventoryError('invalid', 'CSV header repeats a column');
  const problems: string[] = [];
  const rows = lines.slice(1).map(({ l, n }, i) => {
    const f = csvFields(l);
    if (f.length !== header.length) problems.push(`row ${i + 1} (line ${n}): ${f.length} fields, header has ${header.length}`);
    const row: Record<string, string> = {};
    header.forEach((h, j) => {
      if (f[j] !== undefined && !(h === 'type' && f[j] === '')) row[h] = f[j]!;
    });
    return row as unknown as InventoryRow;
  });
  if (problems.length) throw invalidRows(problems, rows.length);
  return rows;
}

/** Parses inventory JSON: an array of objects (or `{ "profiles": [...] }`). */
export function parseJson(data: string | unknown): unknown[] {
  let v: unknown = data;
  if (typeof data === 'string') {
    try {
      v = JSON.parse(data);
    } catch (err) {
      throw new InventoryError('invalid', `not valid JSON: ${(err as Error).message}`);
    }
  }
  if (v && typeof v === 'object' && !Array.isArray(v) && Array.isArray((v as { profiles?: unknown }).profiles)) v = (v as { profiles: unknown[] }).profiles;
  if (!Array.isArray(v)) throw new InventoryError('invalid', 'JSON inventory must be an array of {iccid, imsi, ki, opc[, type]} objects');
  return v;
}


/** Parses `data` in the given format and imports it (all or nothing). */
export async function importInventory(db: Database, format: ImportFormat, data: unknown, opts: ImportOptions) {
  if (format === 'csv') {
    if (typeof data !== 'string') throw new InventoryError('invalid', 'CSV data must be a string');
    return importProfiles(db, parseCsv(data), opts);
  }
  if (format === 'json') return importProfiles(db, parseJson(data), opts);
  throw new InventoryError('invalid', `unknown format ${String(format)}; csv or json`);
}
