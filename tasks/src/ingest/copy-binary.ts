import type { ColumnContract, TableContract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import { tokenise } from '../pii.js';
import type { Warehouse } from '../warehouse/db.js';
import { isoLike, padded } from './copy-line.js';

/**
 * `COPY … (FORMAT binary)`: the server stores each value as sent, with no text to parse, which
 * roughly halves its work on a numeric table. A column is sent in binary only where the contract's
 * type and the table's type are a natural pair (number → double precision, integer → bigint /
 * integer / smallint, timestamp → bigint epoch ms, string → text / varchar / char, boolean →
 * boolean); a table with any other column type is loaded through the CSV COPY instead.
 */
export type BinaryType = 'bool' | 'int2' | 'int4' | 'int8' | 'float8' | 'text';

const BY_OID: Readonly<Record<number, BinaryType>> = {
  16: 'bool',
  20: 'int8',
  21: 'int2',
  23: 'int4',
  25: 'text',
  701: 'float8',
  1042: 'text',
  1043: 'text',
};

const NATURAL: Readonly<Record<ColumnContract['type'], readonly BinaryType[]>> = {
  number: ['float8'],
  integer: ['int8', 'int4', 'int2'],
  timestamp: ['int8'],
  string: ['text'],
  boolean: ['bool'],
};

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * The binary type of each stored column (the contract's columns in order, then `source_key`), or
 * undefined when one of them has no natural binary pair and the CSV COPY must be used.
 */
export async function binaryTypes(
  trx: Warehouse,
  table: TableContract,
  stored: readonly string[],
): Promise<BinaryType[] | undefined> {
  const { rows } = (await trx.raw(
    'SELECT attname, atttypid FROM pg_attribute WHERE attrelid = to_regclass(?) AND attnum > 0 AND NOT attisdropped',
    [q(table.name)],
  )) as { rows: { attname: string; atttypid: number }[] };
  const oid = new Map(rows.map((r) => [r.attname, Number(r.atttypid)]));
  const types: BinaryType[] = [];
  for (let i = 0; i < stored.length; i++) {
    const type = BY_OID[oid.get(stored[i] as string) ?? -1];
    const col = table.columns[i];
    if (!type || (col ? !NATURAL[col.type].includes(type) : type !== 'text')) return undefined;
    types.push(type);
  }
  return types;
}

/** The 19 bytes before the first tuple: signature, flags (no OIDs), header extension length 0. */
export const BINARY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
/** The file trailer: a tuple field count of -1. */
export const BINARY_TRAILER = Buffer.from([0xff, 0xff]);

const INT_RANGE: Readonly<Record<'int2' | 'int4' | 'int8', [number, number]>> = {
  int2: [-32768, 32767],
  int4: [-2147483648, 2147483647],
  int8: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** A growable buffer of binary COPY tuples (big-endian, as the protocol wants). */
export class TupleBuffer {
  buf: Buffer;
  private view: DataView;
  used = 0;

  constructor(bytes: number) {
    this.buf = Buffer.allocUnsafe(bytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }
  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.used + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + n));
    this.buf.copy(bigger, 0, 0, this.used);
    this.buf = bigger;
    this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength);
  }
  fieldCount(n: number): void {
    this.view.setInt16(this.used, n);
    this.used += 2;
  }
  null(): void {
    this.view.setInt32(this.used, -1);
    this.used += 4;
  }
  float8(v: number): void {
    this.view.setInt32(this.used, 8);
    // -0 is stored as 0, as the CSV COPY writes it.
    this.view.setFloat64(this.used + 4, v === 0 ? 0 : v);
    this.used += 12;
  }
  /** A safe integer as a 2-, 4- or 8-byte integer (the caller checked its range). */
  int(type: 'int2' | 'int4' | 'int8', v: number): void {
    const at = this.used;
    if (type === 'int8') {
      this.view.setInt32(at, 8);
      this.view.setInt32(at + 4, Math.floor(v / 4294967296));
      this.view.setUint32(at + 8, v >>> 0);
      this.used += 12;
    } else if (type === 'int4') {
      this.view.setInt32(at, 4);
      this.view.setInt32(at + 4, v);
      this.used += 8;
    } else {
      this.view.setInt32(at, 2);
      this.view.setInt16(at + 4, v);
      this.used += 6;
    }
  }
  bool(v: boolean): void {
    this.view.setInt32(this.used, 1);
    this.buf[this.used + 4] = v ? 1 : 0;
    this.used += 5;
  }
  text(s: string): void {
    this.ensure(4 + s.length * 3);
    const n = this.buf.write(s, this.used + 4, 'utf8');
    this.view.setInt32(this.used, n);
    this.used += 4 + n;
  }
  /** Bytes already encoded (for a value written once per file, such as the source key). */
  bytes(b: Buffer): void {
    this.ensure(4 + b.length);
    this.view.setInt32(this.used, b.length);
    b.copy(this.buf, this.used + 4);
    this.used += 4 + b.length;
  }
}

/** The most bytes a tuple's fixed-width fields take: field count + 12 per column. */
export const fixedBytes = (columns: number): number => 2 + 12 * columns;

const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

/**
 * The value of a plain decimal (`^[+-]?(\d+\.?\d*|\.\d+)$`), NaN for any other text (an exponent,
 * an infinity, blanks): the same value as Number(s). Up to 15 digits and 22 decimals the digits
 * are an exact integer and 10^k an exact power, so one division rounds as Number() does; longer
 * texts are read by Number().
 */
export function plainDecimalValue(s: string): number {
  const n = s.length;
  let i = 0;
  const first = s.charCodeAt(0);
  const negative = first === 45;
  if (negative || first === 43) i = 1;
  let digits = 0;
  let mantissa = 0;
  let decimals = -1;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits++;
      if (decimals >= 0) decimals++;
    } else if (c === 46 && decimals < 0) decimals = 0;
    else return Number.NaN;
  }
  if (digits === 0) return Number.NaN;
  if (digits > 15 || decimals > 22) return Number(s);
  const v = decimals > 0 ? mantissa / (POW10[decimals] as number) : mantissa;
  return negative ? -v : v;
}

/**
 * Writes a clean CSV cell into the tuple and returns true; returns false, having written nothing,
 * for a cell the contract's full check must see (the row then goes through validateRow).
 */
type CellEncoder = (text: string, out: TupleBuffer) => boolean;

/** The binary twin of copy-line's cellWriter: accepts exactly what it accepts. */
function cellEncoder(col: ColumnContract, type: BinaryType, piiKey: string | undefined): CellEncoder {
  const required = col.nullable === false;
  const allowed = col.allowed ? new Set<unknown>(col.allowed) : undefined;
  const min = col.range?.min ?? Number.NEGATIVE_INFINITY;
  const max = col.range?.max ?? Number.POSITIVE_INFINITY;
  const inRange = (v: number): boolean => v >= min && v <= max && (!allowed || allowed.has(v));
  const blank = (out: TupleBuffer): boolean => {
    if (required) return false;
    out.null();
    return true;
  };
  switch (col.type) {
    case 'string': {
      const pii = col.role === 'pii';
      return (s, out) => {
        // An empty field is NULL, as in the CSV COPY.
        if (s === '') return blank(out);
        if (padded(s) || (allowed && !allowed.has(s))) return false;
        out.text(pii ? tokenise(s, piiKey) : s);
        return true;
      };
    }
    case 'number':
      return (s, out) => {
        if (s === '') return blank(out);
        const v = plainDecimalValue(s);
        if (!Number.isFinite(v) || !inRange(v)) return false;
        out.float8(v);
        return true;
      };
    case 'integer': {
      const [lo, hi] = INT_RANGE[type as 'int2' | 'int4' | 'int8'];
      return (s, out) => {
        if (s === '') return blank(out);
        const v = plainDecimalValue(s);
        if (!Number.isInteger(v) || v < lo || v > hi || !inRange(v)) return false;
        out.int(type as 'int2' | 'int4' | 'int8', v);
        return true;
      };
    }
    case 'boolean':
      return (s, out) => {
        if (s === '') return blank(out);
        if (s !== 'true' && s !== 'false') return false;
        const v = s === 'true';
        if (allowed && !allowed.has(v)) return false;
        out.bool(v);
        return true;
      };
    case 'timestamp':
      return (s, out) => {
        if (s === '') return blank(out);
        if (padded(s)) return false;
        const t = Date.parse(s);
        if (!Number.isFinite(t) || !isoLike(s) || !inRange(t)) return false;
        out.int('int8', t);
        return true;
      };
  }
}

/**
 * Compiles, once per file, the binary tuple writer for a CSV file's records: the contract's columns
 * in order (PII tokenised), then the source key. Returns false, with nothing written, for a record
 * with any value the contract's full check must see.
 */
export function compileBinaryRecord(
  table: TableContract,
  types: readonly BinaryType[],
  header: readonly string[],
  sourceKey: string,
  piiKey: string | undefined,
): (fields: readonly string[], out: TupleBuffer) => boolean {
  const index = table.columns.map((c) => header.lastIndexOf(c.name));
  if (table.columns.some((c, i) => index[i] === -1 && c.nullable === false)) return () => false;
  const encoders = table.columns.map((c, i) => cellEncoder(c, types[i] as BinaryType, piiKey));
  const key = Buffer.from(sourceKey, 'utf8');
  const n = encoders.length;
  const fixed = fixedBytes(n + 1);
  return (fields, out) => {
    out.ensure(fixed);
    const start = out.used;
    out.fieldCount(n + 1);
    for (let i = 0; i < n; i++) {
      const at = index[i] as number;
      if (at < 0) out.null();
      else if (!(encoders[i] as CellEncoder)(fields[at] as string, out)) {
        out.used = start;
        return false;
      }
    }
    out.bytes(key);
    return true;
  };
}

/** A text's number as the server would read it; NaN for anything else. */
const numberOf = (v: unknown): number => (typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN);

/** A text's boolean as the server reads one (a contract default may be written as text). */
function boolOf(v: unknown): boolean | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim().toLowerCase();
  if (['t', 'true', 'y', 'yes', 'on', '1'].includes(t)) return true;
  if (['f', 'false', 'n', 'no', 'off', '0'].includes(t)) return false;
  return undefined;
}

/**
 * Writes one validated row (by stored column name, PII already tokenised) as a tuple. A value the
 * column cannot hold is refused with the column's name, as the server would refuse it.
 */
export function encodeRow(
  row: Record<string, unknown>,
  columns: readonly string[],
  types: readonly BinaryType[],
  table: string,
  out: TupleBuffer,
): void {
  out.ensure(fixedBytes(columns.length));
  out.fieldCount(columns.length);
  for (let i = 0; i < columns.length; i++) {
    const name = columns[i] as string;
    const v = row[name];
    const type = types[i] as BinaryType;
    if (v === null || v === undefined) {
      out.null();
      continue;
    }
    const refuse = (): never => {
      throw new DriftwoodError(
        'SCHEMA_MISMATCH',
        `table ${table}: column ${name} (${type}) cannot hold ${JSON.stringify(v)}`,
      );
    };
    switch (type) {
      case 'text':
        out.text(String(v));
        break;
      case 'bool': {
        const b = typeof v === 'boolean' ? v : boolOf(v);
        if (b === undefined) refuse();
        out.bool(b as boolean);
        break;
      }
      case 'float8': {
        // A number is stored as it is (NaN and infinities too, as the CSV COPY stores them).
        const n = typeof v === 'number' ? v : numberOf(v);
        if (typeof v !== 'number' && Number.isNaN(n)) refuse();
        out.float8(n);
        break;
      }
      default: {
        const n = typeof v === 'number' ? v : numberOf(v);
        const [lo, hi] = INT_RANGE[type];
        if (!Number.isInteger(n) || n < lo || n > hi) refuse();
        out.int(type, n);
      }
    }
  }
}
