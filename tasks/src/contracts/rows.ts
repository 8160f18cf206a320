import type { AnomalyPolicy, ColumnContract, TableContract } from './types.js';

/** What was wrong with a value, in the words of the reason files and the ingest report. */
export type AnomalyRule = 'type' | 'blank' | 'null' | 'allowed' | 'range' | 'malformed_row';

export interface Problem {
  row: number;
  column: string | null;
  value: unknown;
  rule: AnomalyRule;
  action: 'corrected' | 'defaulted' | 'dropped_row' | 'quarantined_file';
  detail?: string;
}

export type RowVerdict =
  | { status: 'good'; values: Record<string, unknown>; problems: Problem[] }
  | { status: 'corrected'; values: Record<string, unknown>; problems: Problem[] }
  | { status: 'dropped'; problems: Problem[] }
  | { status: 'quarantine_file'; problems: Problem[] };

type Cell = { ok: true; value: unknown } | { ok: false; rule: AnomalyRule; fixed?: unknown; detail: string };

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const ISO_LIKE = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}:?\d{2})?$/;

const toNumber = (v: unknown): number | undefined => {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && NUMERIC.test(v.trim())) return Number(v.trim());
  return undefined;
};

/**
 * Reads one value as the column's type. Strict reading takes what a well-formed file holds (in CSV
 * every cell is text, so "42" is a number there; in JSON Lines "42" is a string, a type anomaly).
 * When strict reading fails, `fixed` is what `coerce` would store instead, if anything.
 */
export function readCell(raw: unknown, col: ColumnContract, textual: boolean): Cell {
  if (raw === undefined || raw === null || raw === '') return { ok: true, value: null };
  if (typeof raw === 'string' && raw.trim() === '')
    return { ok: false, rule: 'blank', fixed: null, detail: 'blank value' };
  switch (col.type) {
    case 'string': {
      if (typeof raw === 'string')
        return raw === raw.trim()
          ? { ok: true, value: raw }
          : { ok: false, rule: 'type', fixed: raw.trim(), detail: 'padded text' };
      if (typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint')
        return { ok: false, rule: 'type', fixed: String(raw), detail: `expected text, got ${typeof raw}` };
      return { ok: false, rule: 'type', detail: `expected text, got ${typeof raw}` };
    }
    case 'number':
    case 'integer': {
      const wanted = col.type === 'integer' ? 'an integer' : 'a number';
      const n = toNumber(raw);
      const intOk = (x: number) => col.type !== 'integer' || Number.isInteger(x);
      const strictOk =
        typeof raw === 'number' ||
        typeof raw === 'bigint' ||
        (textual && typeof raw === 'string' && raw === raw.trim());
      if (n !== undefined && strictOk && intOk(n)) return { ok: true, value: n };
      if (n !== undefined && intOk(n))
        return { ok: false, rule: 'type', fixed: n, detail: `expected ${wanted}, got text` };
      return { ok: false, rule: 'type', detail: `expected ${wanted}` };
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      const s = String(raw).trim().toLowerCase();
      if (textual && (s === 'true' || s === 'false') && s === String(raw))
        return { ok: true, value: s === 'true' };
      if (['true', '1', 'yes', 'y'].includes(s))
        return { ok: false, rule: 'type', fixed: true, detail: 'expected a boolean' };
      if (['false', '0', 'no', 'n'].includes(s))
        return { ok: false, rule: 'type', fixed: false, detail: 'expected a boolean' };
      return { ok: false, rule: 'type', detail: 'expected a boolean' };
    }
    case 'timestamp': {
      if (raw instanceof Date)
        return Number.isFinite(raw.getTime())
          ? { ok: true, value: raw.getTime() }
          : { ok: false, rule: 'type', detail: 'invalid date' };
      if (typeof raw === 'bigint') return { ok: true, value: Number(raw) };
      if (typeof raw === 'number') return { ok: true, value: raw };
      if (typeof raw === 'string') {
        const t = Date.parse(raw.trim());
        if (Number.isFinite(t) && ISO_LIKE.test(raw)) return { ok: true, value: t };
        if (Number.isFinite(t)) return { ok: false, rule: 'type', fixed: t, detail: 'expected an ISO time' };
      }
      return { ok: false, rule: 'type', detail: 'expected an ISO time' };
    }
  }
}

/** Checks nullability, allowed values and range of a value already read as its type. */
function checkConstraints(
  value: unknown,
  col: ColumnContract,
): { rule: AnomalyRule; detail: string } | undefined {
  if (value === null) return col.nullable === false ? { rule: 'null', detail: 'value required' } : undefined;
  if (col.allowed && !col.allowed.includes(value as string | number | boolean))
    return { rule: 'allowed', detail: `not one of ${col.allowed.join(', ')}` };
  if (col.range && typeof value === 'number') {
    if (col.range.min !== undefined && value < col.range.min)
      return { rule: 'range', detail: `below ${col.range.min}` };
    if (col.range.max !== undefined && value > col.range.max)
      return { rule: 'range', detail: `above ${col.range.max}` };
  }
  return undefined;
}

const policyOf = (col: ColumnContract): AnomalyPolicy => col.on_anomaly ?? 'drop_row';

/**
 * Validates one raw row against a table contract and applies each column's anomaly policy. Pure:
 * the ingest step decides where rows go from the verdict. `coerce` stores the repaired value when
 * one exists and satisfies the column; when it does not, the row is dropped (and says so).
 */
export function validateRow(
  raw: Record<string, unknown>,
  row: number,
  table: TableContract,
  textual: boolean,
): RowVerdict {
  const values: Record<string, unknown> = {};
  const problems: Problem[] = [];
  let dropped = false;
  for (const col of table.columns) {
    const original = raw[col.name];
    const cell = readCell(original, col, textual);
    let value: unknown;
    let anomaly: { rule: AnomalyRule; detail: string; fixed?: unknown; hasFix: boolean } | undefined;
    if (cell.ok) {
      const c = checkConstraints(cell.value, col);
      value = cell.value;
      if (c) anomaly = { ...c, hasFix: false };
    } else anomaly = { rule: cell.rule, detail: cell.detail, fixed: cell.fixed, hasFix: 'fixed' in cell };
    if (anomaly) {
      const policy = policyOf(col);
      const base = {
        row,
        column: col.name,
        value: original ?? null,
        rule: anomaly.rule,
        detail: anomaly.detail,
      };
      if (policy === 'quarantine_file') {
        problems.push({ ...base, action: 'quarantined_file' });
        return { status: 'quarantine_file', problems };
      }
      if (policy === 'coerce' && anomaly.hasFix && checkConstraints(anomaly.fixed, col) === undefined) {
        value = anomaly.fixed;
        problems.push({ ...base, action: 'corrected' });
      } else if (typeof policy === 'object') {
        value = policy.default;
        problems.push({ ...base, action: 'defaulted' });
      } else {
        problems.push({ ...base, action: 'dropped_row' });
        dropped = true;
        continue;
      }
    }
    values[col.name] = value;
  }
  if (dropped) return { status: 'dropped', problems };
  return problems.length > 0
    ? { status: 'corrected', values, problems }
    : { status: 'good', values, problems };
}

/**
 * Checks a file's columns before any row is read: a required column missing (one with a default is
 * filled instead) or, when the contract rejects them, unknown extra columns.
 */
export function checkColumns(
  columns: readonly string[],
  table: TableContract,
  extra: 'accept' | 'reject',
): { missing: string[]; extra: string[]; reject?: string } {
  const declared = new Set(table.columns.map((c) => c.name));
  const present = new Set(columns);
  const missing = table.columns
    .filter((c) => !present.has(c.name) && c.nullable === false && typeof c.on_anomaly !== 'object')
    .map((c) => c.name);
  const extras = columns.filter((c) => !declared.has(c));
  if (missing.length > 0)
    return { missing, extra: extras, reject: `missing required column(s): ${missing.join(', ')}` };
  if (extra === 'reject' && extras.length > 0)
    return {
      missing,
      extra: extras,
      reject: `unknown column(s): ${extras.join(', ')} (extra_columns: reject)`,
    };
  return { missing, extra: extras };
}
