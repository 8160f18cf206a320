import type { ColumnContract, TableContract } from '../contracts/types.js';
import { tokenise } from '../pii.js';

/**
 * One CSV cell of a `COPY … (FORMAT csv)` body, from a value the contract has already read: NULL is
 * an empty unquoted field and every text is quoted, so '' stays '' and no text reads as `\.`.
 */
export function copyCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return quoted(String(v));
}

const quoted = (s: string): string => (s.includes('"') ? `"${s.replace(/"/g, '""')}"` : `"${s}"`);

/** A clean CSV cell as its COPY cell, or undefined when the contract's full check must decide. */
type CellWriter = (text: string) => string | undefined;

/**
 * The number of digits of a plain decimal (`^[+-]?(\d+\.?\d*|\.\d+)$`), 0 when the text is not one:
 * an exponent, an infinity or anything odd takes the full check.
 */
function plainDecimal(s: string): number {
  const n = s.length;
  let i = 0;
  const first = s.charCodeAt(0);
  if (first === 43 || first === 45) i = 1;
  let digits = 0;
  let dot = false;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c === 46 && !dot) dot = true;
    else return 0;
  }
  return digits;
}
const ISO_LIKE = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Whether a text has the shape of an ISO 8601 date or date-time. */
export const isoLike = (s: string): boolean => ISO_LIKE.test(s);

/** Exactly `s !== s.trim()`, without trimming when both ends are visible ASCII (nearly always). */
export function padded(s: string): boolean {
  const a = s.charCodeAt(0);
  const b = s.charCodeAt(s.length - 1);
  if (a > 32 && a < 128 && b > 32 && b < 128) return false;
  return s !== s.trim();
}

/**
 * The fast path of one column for CSV text: accepts only what `validateRow` would take as a good
 * value (no anomaly, so no policy applies) and returns it as a COPY cell; anything else returns
 * undefined and the row goes through `validateRow`. Built once per file from the contract.
 */
function cellWriter(col: ColumnContract, piiKey: string | undefined): CellWriter {
  const required = col.nullable === false;
  const allowed = col.allowed ? new Set<unknown>(col.allowed) : undefined;
  const min = col.range?.min ?? Number.NEGATIVE_INFINITY;
  const max = col.range?.max ?? Number.POSITIVE_INFINITY;
  const inRange = (n: number): boolean => n >= min && n <= max && (!allowed || allowed.has(n));
  switch (col.type) {
    case 'string': {
      const pii = col.role === 'pii';
      return (s) => {
        if (s === '') return required ? undefined : '';
        if (padded(s) || (allowed && !allowed.has(s))) return undefined;
        return pii ? tokenise(s, piiKey) : quoted(s);
      };
    }
    case 'number': {
      const free = !allowed && !col.range;
      return (s) => {
        if (s === '') return required ? undefined : '';
        const digits = plainDecimal(s);
        if (digits === 0) return undefined;
        // PostgreSQL reads a plain decimal to the same double as Number() (both round to nearest);
        // a short one is finite, and a long one is written as Number() reads it.
        if (free && s.length <= 20 && s.charCodeAt(0) !== 45) return s;
        const n = Number(s);
        if (!Number.isFinite(n) || !inRange(n)) return undefined;
        // -0 is stored as 0, as copyCell writes it.
        return n === 0 ? '0' : s.length <= 20 ? s : String(n);
      };
    }
    case 'integer': {
      const free = !allowed && !col.range;
      return (s) => {
        if (s === '') return required ? undefined : '';
        const digits = plainDecimal(s);
        if (digits === 0) return undefined;
        // Digits alone, short enough to be exact in a double: PostgreSQL reads them as Number() does.
        if (free && digits === s.length && digits <= 15) return s;
        const n = Number(s);
        return Number.isInteger(n) && inRange(n) ? String(n) : undefined;
      };
    }
    case 'boolean':
      return (s) => {
        if (s === '') return required ? undefined : '';
        if (s !== 'true' && s !== 'false') return undefined;
        return !allowed || allowed.has(s === 'true') ? s : undefined;
      };
    case 'timestamp':
      return (s) => {
        if (s === '') return required ? undefined : '';
        if (padded(s)) return undefined;
        const t = Date.parse(s);
        return Number.isFinite(t) && isoLike(s) && inRange(t) ? String(t) : undefined;
      };
  }
}

/**
 * Compiles, once per file, the COPY line writer for a CSV file's records: the contract's columns in
 * order (PII tokenised), then the source key. Returns undefined for a record that has any value
 * the contract's full check must see (an anomaly, a missing column); the caller then validates it.
 */
export function compileCopyLine(
  table: TableContract,
  header: readonly string[],
  sourceKey: string,
  piiKey: string | undefined,
): (fields: readonly string[]) => string | undefined {
  // A repeated header name keeps its last column, as the row records do.
  const index = table.columns.map((c) => header.lastIndexOf(c.name));
  const writers = table.columns.map((c) => cellWriter(c, piiKey));
  const absent = table.columns.map((c, i) => index[i] === -1 && c.nullable === false);
  if (absent.some(Boolean)) return () => undefined;
  // One array reused for every record, joined into one flat string: no string tree per line.
  const cells: string[] = new Array(writers.length + 1).fill('');
  cells[writers.length] = `${quoted(sourceKey)}\n`;
  const n = writers.length;
  return (fields) => {
    for (let i = 0; i < n; i++) {
      const at = index[i] as number;
      const cell = at < 0 ? '' : (writers[i] as CellWriter)(fields[at] as string);
      if (cell === undefined) return undefined;
      cells[i] = cell;
    }
    return cells.join(',');
  };
}
