import { tokenise } from '@driftwood/tasks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PredictionLines, type ServedPrediction } from '../../serving/src/predictions/line.js';
import { loggableFeatures } from '../../serving/src/predictions/log.js';
import { batchRows, bodyRow, cuttable, rowText } from '../../serving/src/predictions/row-text.js';

const KEY = 'pii-key-0123456789abcdef';
const model = { name: 'churn', version: '3', alias: 'champion' };
const TS = Date.parse('2026-12-02T10:15:00.123Z');

/** The record as the log documents it, built from the parsed row: what every line must equal. */
function expected(row: Record<string, unknown>, p: Omit<ServedPrediction, 'row' | 'source'>) {
  const id = row.customer_id;
  return {
    ts: new Date(p.ts).toISOString(),
    request_id: p.requestId,
    model: { name: p.model.name, version: p.model.version, alias: p.model.alias },
    served: p.served,
    customer_token: typeof id === 'string' ? tokenise(id, KEY) : null,
    // Through JSON, as a reader of the log sees it (-0 is written 0, integer-like keys move first).
    features: JSON.parse(JSON.stringify(loggableFeatures(row))),
    probability: p.probability,
    label: p.label,
  };
}

// Members of a request row: plain feature names, keys a naive splice could trip on, and the id.
const key = fc.oneof(
  fc.constantFrom(
    'customer_id',
    'plan',
    'region',
    'tenure_days',
    'spend_30d',
    'customer_idx',
    'x_customer_id',
  ),
  // The body parser refuses prototype keys before a row gets this far.
  fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__' && k !== 'constructor'),
);
const scalar = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.constantFrom(null, true, false, 'customer_id', '"customer_id":"x"', '{', '}', '[', ',', ':'),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
);
const members = fc.array(fc.tuple(key, scalar), { maxLength: 12 });
const gap = fc.constantFrom('', '', '', ' ', '  ', '\t');
const lineBreak = fc.constantFrom('\n', '\r\n', ' \n ');

/**
 * A row's JSON text as some client might write it: any spacing (line breaks in one body of five),
 * repeated keys, escaped slashes in one of four, numbers as written.
 */
const rowJson = fc
  .tuple(
    members,
    fc.array(fc.oneof(gap, lineBreak), { minLength: 64, maxLength: 64 }),
    fc.array(gap, { minLength: 64, maxLength: 64 }),
    fc.nat(19),
  )
  .map(([ms, anyGaps, plainGaps, dice]) => {
    const gaps = dice < 4 ? anyGaps : plainGaps;
    let g = 0;
    const s = () => gaps[g++ % gaps.length] as string;
    const str = (v: string) => {
      const j = JSON.stringify(v);
      return dice % 4 === 1 ? j.replace(/\//g, '\\/') : j;
    };
    const parts = ms.map(
      ([k, v]) => `${s()}${str(k)}${s()}:${s()}${typeof v === 'string' ? str(v) : JSON.stringify(v)}${s()}`,
    );
    return `{${parts.join(',')}${s()}}`;
  });

/** Whether the fast path takes a single-row body (the tests check it is taken often enough). */
const cutsRow = (body: string) => {
  const row = cuttable(body) ? bodyRow(body) : undefined;
  return row !== undefined && rowText(row) !== undefined;
};

const meta = fc.record({
  requestId: fc.string({ maxLength: 10 }),
  served: fc.boolean(),
  probability: fc.double({ min: 0, max: 1, noNaN: true }),
  label: fc.constantFrom(0, 1),
});

describe('prediction log lines', () => {
  it('cut from the body text, equal the record built from the parsed row, with the id tokenised', () => {
    const lines = new PredictionLines(KEY);
    let cut = 0;
    fc.assert(
      fc.property(rowJson, meta, (body, m) => {
        if (cutsRow(body)) cut++;
        const row = JSON.parse(body) as Record<string, unknown>;
        const p = { ts: TS, model, ...m };
        const line = lines.format({ ...p, row, source: { body, index: -1 } });
        expect(line.endsWith('}\n')).toBe(true);
        expect(line.slice(0, -1)).not.toMatch(/[\n\r]/);
        expect(JSON.parse(line)).toEqual(expected(row, p));
        expect(lines.partition).toBe('dt=2026-12-02/hr=10');
      }),
      { numRuns: 3000 },
    );
    expect(cut).toBeGreaterThan(600);
  });

  it('cut from a batch body, each row by its index, equal the records of the parsed rows', () => {
    const lines = new PredictionLines(KEY);
    const batch = fc
      .tuple(fc.array(rowJson, { minLength: 1, maxLength: 6 }), gap, fc.boolean())
      .map(([rows, s, twice]) => {
        const member = `"rows"${s}:${s}[${rows.join(`${s},${s}`)}]`;
        // A repeated `rows` member: JSON.parse, and so the route, keeps the last.
        return `{${s}${twice ? `"rows":[{"customer_id":"ghost"}],` : ''}${member}${s}}`;
      });
    fc.assert(
      fc.property(batch, meta, (body, m) => {
        const rows = (JSON.parse(body) as { rows: Record<string, unknown>[] }).rows;
        const p = { ts: TS, model, ...m };
        rows.forEach((row, index) => {
          const line = lines.format({ ...p, row, source: { body, index, rows: rows.length } });
          expect(JSON.parse(line)).toEqual(expected(row, p));
          // A count that does not match the cut (never the case for a validated body) is not trusted.
          const wrong = lines.format({ ...p, row, source: { body, index, rows: rows.length + 1 } });
          expect(JSON.parse(wrong)).toEqual(expected(row, p));
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('takes the fast path for compact flat bodies, the ones clients send', () => {
    const flat = fc.array(
      fc.tuple(
        fc.constantFrom('customer_id', 'plan', 'tenure_days', 'spend_30d'),
        fc.oneof(
          fc.double({ noNaN: true, noDefaultInfinity: true }),
          fc.constantFrom(null, 'basic', 'a}b', 'customer_id'),
        ),
      ),
      { maxLength: 8 },
    );
    fc.assert(
      fc.property(flat, (ms) => {
        const body = JSON.stringify(Object.fromEntries(ms));
        expect(cuttable(body)).toBe(true);
        const row = bodyRow(body);
        expect(row).toBe(body);
        const cut = rowText(row as string);
        expect(cut).toBeDefined();
        expect(JSON.parse(cut?.features as string)).toEqual(
          JSON.parse(JSON.stringify(loggableFeatures(JSON.parse(body)))),
        );
        const batch = JSON.stringify({ rows: [Object.fromEntries(ms), Object.fromEntries(ms)] });
        expect(batchRows(batch)).toHaveLength(4);
      }),
      { numRuns: 1000 },
    );
  });

  it('stamps each line with its own time and partition, however times follow each other', () => {
    const lines = new PredictionLines(undefined);
    const p = { model, requestId: 'r', served: true, probability: 0.5, label: 1, row: { x: 1 } };
    const start = fc.integer({
      min: Date.parse('2020-01-01T00:00:00Z'),
      max: Date.parse('2030-01-01T00:00:00Z'),
    });
    const steps = fc.array(
      fc.oneof(fc.constantFrom(0, 1, 999, 1000, -1), fc.integer({ min: -4e6, max: 4e6 })),
      {
        maxLength: 20,
      },
    );
    fc.assert(
      fc.property(start, steps, (t0, ds) => {
        let ts = t0;
        for (const d of [0, ...ds]) {
          ts += d;
          const iso = new Date(ts).toISOString();
          expect(JSON.parse(lines.format({ ...p, ts })).ts).toBe(iso);
          expect(lines.partition).toBe(`dt=${iso.slice(0, 10)}/hr=${iso.slice(11, 13)}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('leaves the customer out without a PII key, and serialises the row when there is no body text', () => {
    const row = { customer_id: 'C-42', plan: 'basic', spend_30d: 12.5 };
    const p = { ts: TS, model, requestId: 'r1', served: false, probability: 0.25, label: 0 };
    const plain = new PredictionLines(undefined).format({
      ...p,
      row,
      source: { body: JSON.stringify(row), index: -1 },
    });
    expect(JSON.parse(plain)).toMatchObject({
      customer_token: null,
      features: { plan: 'basic', spend_30d: 12.5 },
    });
    expect(plain).not.toContain('C-42');
    const fromRow = new PredictionLines(KEY).format({ ...p, row });
    expect(JSON.parse(fromRow)).toEqual({ ...expected(row, p), customer_token: tokenise('C-42', KEY) });
  });
});
