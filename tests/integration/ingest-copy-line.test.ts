import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateRow } from '../../tasks/src/contracts/rows.js';
import type { TableContract } from '../../tasks/src/contracts/types.js';
import {
  type BinaryType,
  compileBinaryRecord,
  encodeRow,
  plainDecimalValue,
  TupleBuffer,
} from '../../tasks/src/ingest/copy-binary.js';
import { compileCopyLine, copyCell } from '../../tasks/src/ingest/copy-line.js';
import { tokenise } from '../../tasks/src/pii.js';
import { csvRecords } from '../../tasks/src/readers/index.js';

const KEY = 'test-key-0123456789abcdef';
const SOURCE = 'raw/demo/dt=2026-11-01/hr=00/items.csv';

/** Every column type, with and without constraints, required and nullable. */
const table: TableContract = {
  name: 'items',
  files: ['items.csv'],
  key: 'id',
  columns: [
    { name: 'id', type: 'integer', role: 'id', nullable: false, on_anomaly: 'quarantine_file' },
    {
      name: 'email',
      type: 'string',
      role: 'pii',
      nullable: true,
      store_as: 'email_token',
      on_anomaly: 'coerce',
    },
    { name: 'at', type: 'timestamp', role: 'timestamp', nullable: false, on_anomaly: 'drop_row' },
    { name: 'plan', type: 'string', role: 'feature', nullable: false, allowed: ['basic', 'pro'] },
    {
      name: 'price',
      type: 'number',
      role: 'feature',
      nullable: false,
      range: { min: 0, max: 1000 },
      on_anomaly: 'coerce',
    },
    { name: 'score', type: 'number', role: 'feature', nullable: true, on_anomaly: { default: 0 } },
    { name: 'count', type: 'integer', role: 'feature', nullable: true, on_anomaly: 'coerce' },
    { name: 'active', type: 'boolean', role: 'feature', nullable: true, on_anomaly: 'coerce' },
    { name: 'note', type: 'string', role: 'feature', nullable: true },
  ],
};
const header = table.columns.map((c) => c.name);

/** The COPY line of a row the contract accepted, as the general path writes it. */
function generalLine(values: Record<string, unknown>): string {
  const cells = table.columns.map((c) => {
    const v = values[c.name];
    return copyCell(c.role === 'pii' && v !== null && v !== undefined ? tokenise(String(v), KEY) : v);
  });
  return `${[...cells, copyCell(SOURCE)].join(',')}\n`;
}

/** Both lines read back as PostgreSQL would: numbers by value, everything else as text. */
async function cellsOf(line: string): Promise<string[]> {
  for await (const [, fields] of csvRecords(Readable.from([line]))) return fields;
  return [];
}
const numeric = new Set(['id', 'price', 'score', 'count', 'at']);

const awkward = fc.constantFrom(
  '',
  ' ',
  ' 42 ',
  '42',
  '-0',
  '5.',
  '.5',
  '+7',
  '007',
  '1e3',
  '1E-2',
  '0x10',
  'Infinity',
  'NaN',
  '12345678901234567890',
  '1.5',
  'true',
  'false',
  'TRUE',
  'yes',
  '0',
  'basic',
  'pro',
  'gold',
  '2026-11-01T00:00:00Z',
  '2026-11-01T00:00:00.123Z',
  '2026-11-01 10:00',
  '2026-11-01T00:00:00+02:00',
  'yesterday',
  'a@example.com',
  ' a@example.com',
  'say "hi"',
  '\u00a0x',
  'x\u3000',
  'é',
);
const cell = fc.oneof(awkward, fc.string({ maxLength: 6 }), fc.double({ noNaN: true }).map(String));
/** Decimals as files hold them (`791.9`, `-3`), between min and max. */
const decimal = (min: number, max: number) =>
  fc.integer({ min: min * 100, max: max * 100 }).map((cents) => String(cents / 100));
/** Well-formed values of each column, so that whole rows often pass; mixed with awkward ones. */
const wellFormed: Record<string, fc.Arbitrary<string>> = {
  id: fc.integer().map(String),
  email: fc.constantFrom('', 'a@example.com', 'B.c@example.org'),
  at: fc
    .integer({ min: Date.parse('1990-01-01'), max: Date.parse('2090-01-01') })
    .map((t) => new Date(t).toISOString()),
  plan: fc.constantFrom('basic', 'pro'),
  price: decimal(0, 1000),
  score: fc.oneof(fc.constant(''), decimal(-1e6, 1e6)),
  count: fc.oneof(fc.constant(''), fc.integer().map(String)),
  active: fc.constantFrom('', 'true', 'false'),
  note: fc.string({ maxLength: 8 }),
};
const row = fc.tuple(
  ...header.map((h) =>
    fc.oneof(
      { arbitrary: wellFormed[h] as fc.Arbitrary<string>, weight: 12 },
      { arbitrary: cell, weight: 1 },
    ),
  ),
);

describe('the CSV fast path of the ingest', () => {
  it('writes exactly the rows the contract accepts unchanged, with the same values, and no other', async () => {
    const write = compileCopyLine(table, header, SOURCE, KEY);
    let taken = 0;
    let good = 0;
    await fc.assert(
      fc.asyncProperty(row, async (fields) => {
        const values = Object.fromEntries(header.map((h, j) => [h, fields[j]]));
        const verdict = validateRow(values, 2, table, true);
        const fast = write(fields);
        if (verdict.status === 'good') good++;
        if (fast === undefined) return;
        taken++;
        // The fast path only takes rows with no anomaly at all (no policy to apply)…
        expect(verdict.status).toBe('good');
        if (verdict.status !== 'good') return;
        // …and writes the values validateRow reads from them.
        const got = await cellsOf(fast);
        const want = await cellsOf(generalLine(verdict.values));
        expect(got.length).toBe(want.length);
        header.forEach((h, j) => {
          if (numeric.has(h) && got[j] !== '') expect(Number(got[j]), h).toBe(Number(want[j]));
          else expect(got[j], h).toBe(want[j]);
        });
      }),
      { numRuns: 3000 },
    );
    // The fast path is not a rare branch: it takes most rows the contract accepts as they are.
    expect(taken).toBeGreaterThan(good * 0.8);
  });

  it('takes clean rows without the full check, PII tokenised, text quoted', () => {
    const write = compileCopyLine(table, header, SOURCE, KEY);
    const line = write([
      '7',
      'A@example.com',
      '2026-11-01T00:00:00Z',
      'pro',
      '19.5',
      '',
      '3',
      'true',
      'say "hi"',
    ]);
    expect(line).toBe(
      `7,${tokenise('A@example.com', KEY)},${Date.parse('2026-11-01T00:00:00Z')},"pro",19.5,,3,true,"say ""hi""","${SOURCE}"\n`,
    );
    // One value the contract must look at sends the row to the full check.
    expect(write(['7', '', '2026-11-01T00:00:00Z', 'gold', '19.5', '', '3', 'true', ''])).toBeUndefined();
    expect(write(['7', '', '2026-11-01T00:00:00Z', 'pro', ' 19.5', '', '3', 'true', ''])).toBeUndefined();
  });

  it('a missing required column sends every row to the full check; a missing nullable one is NULL', () => {
    expect(
      compileCopyLine(
        table,
        header.filter((h) => h !== 'at'),
        SOURCE,
        KEY,
      )(['7']),
    ).toBeUndefined();
    const without = header.filter((h) => h !== 'note');
    const line = compileCopyLine(
      table,
      without,
      SOURCE,
      KEY,
    )(['7', '', '2026-11-01T00:00:00Z', 'pro', '1', '', '', '']);
    expect(line?.endsWith(`,,"${SOURCE}"\n`)).toBe(true);
  });
});

/** The binary types of the table above as ensureContractTables creates it, then the source key. */
const types: BinaryType[] = [
  'int8',
  'text',
  'int8',
  'text',
  'float8',
  'float8',
  'int8',
  'bool',
  'text',
  'text',
];
const stored = [...table.columns.map((c) => c.store_as ?? c.name), 'source_key'];

/** The tuple the general path writes for a row the contract accepted. */
function generalTuple(values: Record<string, unknown>): Buffer {
  const row: Record<string, unknown> = { source_key: SOURCE };
  for (const c of table.columns) {
    const v = values[c.name];
    row[c.store_as ?? c.name] =
      c.role === 'pii' && v !== null && v !== undefined ? tokenise(String(v), KEY) : v;
  }
  const out = new TupleBuffer(64);
  encodeRow(row, stored, types, table.name, out);
  return Buffer.from(out.buf.subarray(0, out.used));
}

describe('the binary COPY fast path of the ingest', () => {
  it('writes exactly the rows the contract accepts unchanged, as the same tuple as the general path', async () => {
    const write = compileBinaryRecord(table, types, header, SOURCE, KEY);
    const out = new TupleBuffer(16);
    let taken = 0;
    let good = 0;
    fc.assert(
      fc.property(row, (fields) => {
        const values = Object.fromEntries(header.map((h, j) => [h, fields[j]]));
        const verdict = validateRow(values, 2, table, true);
        if (verdict.status === 'good') good++;
        out.used = 0;
        if (!write(fields, out)) {
          // A refused row leaves nothing behind.
          expect(out.used).toBe(0);
          return;
        }
        taken++;
        expect(verdict.status).toBe('good');
        if (verdict.status !== 'good') return;
        expect(Buffer.from(out.buf.subarray(0, out.used)).equals(generalTuple(verdict.values))).toBe(true);
      }),
      { numRuns: 3000 },
    );
    expect(taken).toBeGreaterThan(good * 0.8);
  });

  it('reads plain decimals to the same double as Number(), and nothing else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
          fc.integer({ min: -1e9, max: 1e9 }).map((n) => String(n / 1000)),
          fc.stringMatching(/^[+-]?\d{0,20}\.?\d{0,25}$/),
          fc.string({ maxLength: 6 }),
        ),
        (s) => {
          const v = plainDecimalValue(s);
          if (/^[+-]?(\d+\.?\d*|\.\d+)$/.test(s)) expect(v).toBe(Number(s));
          else expect(v).toBeNaN();
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('encodes every type big-endian as PostgreSQL reads it, and refuses what a column cannot hold', () => {
    const out = new TupleBuffer(4);
    encodeRow(
      { a: -2, b: 2 ** 40 + 3, c: -0, d: true, e: 'é', f: null },
      ['a', 'b', 'c', 'd', 'e', 'f'],
      ['int4', 'int8', 'float8', 'bool', 'text', 'float8'],
      't',
      out,
    );
    expect(out.buf.subarray(0, out.used).toString('hex')).toBe(
      [
        '0006',
        '00000004fffffffe',
        '00000008' + '0000010000000003',
        '00000008' + '0000000000000000',
        '0000000101',
        '00000002c3a9',
        'ffffffff',
      ].join(''),
    );
    out.used = 0;
    encodeRow({ n: -(2 ** 40) - 3 }, ['n'], ['int8'], 't', out);
    expect(out.buf.readBigInt64BE(6)).toBe(-(2n ** 40n) - 3n);
    expect(() => encodeRow({ count: 2 ** 31 }, ['count'], ['int4'], 'items', out)).toThrow(
      /table items: column count \(int4\) cannot hold 2147483648/,
    );
    // Text where a contract default was written as text: read as the server reads it, or refused.
    out.used = 0;
    encodeRow(
      { flag: ' Yes ', off: 'f', n: '2.5' },
      ['flag', 'off', 'n'],
      ['bool', 'bool', 'float8'],
      't',
      out,
    );
    expect(out.buf.subarray(0, out.used).toString('hex')).toBe(
      `0003${'0000000101'}${'0000000100'}00000008${Buffer.from([0x40, 0x04, 0, 0, 0, 0, 0, 0]).toString('hex')}`,
    );
    expect(() => encodeRow({ flag: 'maybe' }, ['flag'], ['bool'], 'items', out)).toThrow(/column flag/);
  });
});
