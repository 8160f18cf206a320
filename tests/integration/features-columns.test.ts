import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import {
  buildChurnColumns,
  buildChurnRows,
  CHURN_CATEGORICAL,
  CHURN_NUMERIC,
  columnsOfRows,
  fitTransform,
  fitTransformColumns,
  type LabelledRow,
  loadContract,
  openObjectStore,
  openWarehouse,
  quantile,
  Rng,
  rowsOfColumns,
  sortNumbers,
  transformColumns,
  transformRows,
  type Warehouse,
} from '@driftwood/tasks';
import knexFactory from 'knex';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOfColumns, materialiseFeatures } from '../../tasks/src/features/index.js';
import { splitAndFit, splitAndFitColumns } from '../../tasks/src/features/training-rows.js';
import { ensureContractTables } from '../../tasks/src/ingest/schema.js';
import { tempHome } from '../support/env.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T = Date.UTC(2026, 10, 20); // the cutoff
const PG_ADMIN = process.env.DRIFTWOOD_TEST_PG_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TYPES = ['session', 'session', 'purchase', 'support_ticket', 'payment_failure', 'other'];
const spec = { numeric: CHURN_NUMERIC, categorical: CHURN_CATEGORICAL };

/** Bit patterns of a float32 matrix: equal arrays here are equal value for value, -0 and NaN included. */
const bits = (m: Float32Array) => Array.from(new Uint32Array(m.buffer, m.byteOffset, m.length));

/**
 * Customers with and without events (so averages and recencies are null for some), a plan only a
 * few hold (it falls to the unseen bucket), null event values, ids whose byte order differs from a
 * locale's, customers signed up after the cutoff and labels either side of it.
 */
async function seed(db: Warehouse): Promise<void> {
  const rng = new Rng(5);
  const ids = Array.from({ length: 240 }, (_, i) => `${['C', 'c', 'b_', 'Z'][i % 4]}${i}`);
  await db.batchInsert(
    'customers',
    ids.map((id, i) => ({
      customer_id: id,
      email_token: null,
      signup_at: i % 31 === 0 ? T + DAY : T - rng.int(1, 700) * DAY,
      plan: i % 97 === 0 ? 'legacy' : ['basic', 'standard', 'premium'][i % 3],
      region: ['north', 'south', 'east'][i % 3 === 0 ? 0 : rng.int(0, 3)],
      monthly_charges: Math.round((19 + 30 * rng.next()) * 100) / 100,
      source_key: 'test',
    })),
    200,
  );
  const active = ids.filter((_, i) => i % 6 !== 0);
  await db.batchInsert(
    'events',
    Array.from({ length: 4000 }, (_, i) => ({
      event_id: i + 1,
      customer_id: active[rng.int(0, active.length)],
      event_time: T - rng.int(-3 * DAY, 100 * DAY),
      event_type: TYPES[rng.int(0, TYPES.length)],
      value: i % 89 === 0 ? null : Math.round(rng.next() * 5000) / 100 + 0.1,
      source_key: 'test',
    })),
    500,
  );
  await db.batchInsert(
    'labels',
    ids
      .filter((_, i) => i % 4 === 0)
      .map((id) => {
        const churnedAt = T + rng.int(-8 * DAY, 6 * DAY);
        return { customer_id: id, churned_at: churnedAt, reported_at: churnedAt + DAY, source_key: 'test' };
      }),
    200,
  );
}

function typedColumnsEqualRows(open: () => Promise<{ db: Warehouse; close: () => Promise<void> }>) {
  let w: { db: Warehouse; close: () => Promise<void> };
  let rows: LabelledRow[];
  beforeAll(async () => {
    w = await open();
    await seed(w.db);
    rows = await buildChurnRows(w.db, T, 48, { engine: 'warehouse' });
  });
  afterAll(async () => {
    await w?.close();
  });

  it('builds on DuckDB as typed columns the very table the warehouse builds as rows', async () => {
    const table = await buildChurnColumns(w.db, T, 48, { engine: 'duckdb' });
    expect(rows.length).toBeGreaterThan(150);
    expect(rows.some((r) => r.features.avg_session_minutes_30d === null)).toBe(true);
    expect(rows.some((r) => r.label === 1)).toBe(true);
    expect(table.numeric.tenure_days).toBeInstanceOf(Float64Array);
    expect(rowsOfColumns(table)).toEqual(rows);
    // And the warehouse's own columns (its rows turned into columns) are the same table.
    expect(await buildChurnColumns(w.db, T, 48, { engine: 'warehouse' })).toEqual(table);
  });

  it('fits the same transform and writes the same matrix, bit for bit, from the columns as from the rows', async () => {
    const table = await buildChurnColumns(w.db, T, 48, { engine: 'duckdb' });
    const features = rows.map((r) => r.features);
    for (const overrides of [
      {},
      { scaling: 'robust' as const, minCategoryShare: 0.2, maxCorrelation: 0.8 },
    ]) {
      const state = fitTransform(features, spec, overrides);
      const fromColumns = fitTransformColumns(table, spec, overrides);
      expect(fromColumns).toEqual(state);
      // The rare plan goes to the unseen bucket and the null averages get a missing indicator.
      expect(state.outputs).toContain('plan=__unseen__');
      expect(state.outputs).toContain('avg_session_minutes_30d__missing');
      expect(bits(transformColumns(fromColumns, table))).toEqual(bits(transformRows(state, features)));
    }
  });

  it('splits the columns as the rows are split and fits on the same training part', async () => {
    const table = await buildChurnColumns(w.db, T, 48, { engine: 'duckdb' });
    const fractions = { holdout: 0.2, validation: 0.15 };
    const fromRows = splitAndFit(spec, rows, 7, fractions);
    const fromColumns = splitAndFitColumns(spec, table, 7, fractions);
    expect(fromColumns.split).toEqual(fromRows.split);
    expect(fromColumns.state).toEqual(fromRows.state);
    for (const part of ['train', 'validation', 'holdout'] as const)
      expect(Array.from(fromColumns.parts[part], (i) => rows[i])).toEqual(fromRows.parts[part]);
  });
}

describe('typed columns on SQLite', () => {
  typedColumnsEqualRows(async () => {
    const db = await openWarehouse(`sqlite://${path.join(tempHome('driftwood-columns-'), 'w.db')}`);
    await ensureContractTables(db, await loadContract('churn'));
    return { db, close: () => db.destroy() };
  });
});

describe('typed columns on PostgreSQL', () => {
  const admin = knexFactory({ client: 'pg', connection: PG_ADMIN, pool: { min: 0, max: 1 } });
  const created: string[] = [];
  afterAll(async () => {
    for (const name of created) await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  });
  typedColumnsEqualRows(async () => {
    const name = `driftwood_columns_${randomBytes(4).toString('hex')}`;
    await admin.raw(`CREATE DATABASE ${name}`);
    created.push(name);
    const db = await openWarehouse(PG_ADMIN.replace(/\/[^/]*$/, `/${name}`));
    await ensureContractTables(db, await loadContract('churn'));
    return { db, close: () => db.destroy() };
  });
});

describe('typed columns of hand-made rows', () => {
  it('read numbers as the transform reads them: numeric strings, nulls, non-finite and clipped values, empty categories, a time split', () => {
    const rng = new Rng(3);
    const odd = [null, '12.5', '', 'abc', Number.POSITIVE_INFINITY, Number.NaN, 5e15, -5e15, -0];
    const rows: LabelledRow[] = Array.from({ length: 400 }, (_, i) => ({
      customerId: `r${i}`,
      features: {
        a: i % 7 === 0 ? (odd[i % odd.length] as number | string | null) : rng.next() * 100,
        b: i % 5 === 0 ? null : rng.int(0, 3),
        kind: i % 11 === 0 ? null : i % 13 === 0 ? '' : ['x', 'y', 'z'][rng.int(0, 3)],
      },
      label: (i % 3 === 0 ? 1 : 0) as 0 | 1,
      time: T - rng.int(0, 50) * HOUR,
    }));
    const own = { numeric: ['a', 'b'], categorical: ['kind'] };
    const table = columnsOfRows(rows, own);
    const features = rows.map((r) => r.features);
    const state = fitTransform(features, own, { minCategoryShare: 0.3 });
    expect(fitTransformColumns(table, own, { minCategoryShare: 0.3 })).toEqual(state);
    expect(bits(transformColumns(state, table))).toEqual(bits(transformRows(state, features)));
    const fractions = { holdout: 0.25, validation: 0.25, strategy: 'time' as const };
    const fromRows = splitAndFit(own, rows, 1, fractions);
    const fromColumns = splitAndFitColumns(own, table, 1, fractions);
    expect(fromColumns.split).toEqual(fromRows.split);
    expect(fromColumns.state).toEqual(fromRows.state);
  });
});

describe('the features step on DuckDB', () => {
  let url: string;
  let db: Warehouse;
  let onDuckDB: Warehouse;
  beforeAll(async () => {
    url = `sqlite://${path.join(tempHome('driftwood-columns-step-'), 'w.db')}`;
    db = await openWarehouse(url);
    await ensureContractTables(db, await loadContract('churn'));
    await seed(db);
    onDuckDB = await openWarehouse(url, { featureEngine: 'duckdb' });
  });
  afterAll(async () => {
    await Promise.all([db?.destroy(), onDuckDB?.destroy()]);
  });

  /** The step run on `on`, into a lake of its own: its result, the rows it hands training, every file's bytes and what it logged. */
  async function step(on: Warehouse, columnar?: boolean) {
    const lake = openObjectStore(`file://${path.join(tempHome('driftwood-columns-lake-'), 'lake')}`);
    const logged: { columnar?: boolean }[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    const made = await materialiseFeatures(
      {
        dataset: 'churn',
        cutoff: T,
        horizonHours: 48,
        labelDelayHours: 24,
        seed: 7,
        holdoutFraction: 0.2,
        validationFraction: 0.15,
        transform: { minCategoryShare: 0.2 },
        sampleRows: 25,
        ...(columnar === undefined ? {} : { columnar }),
      },
      { db: on, lake, log },
    );
    const files = await Promise.all(made.result.files.map((key) => lake.get(key)));
    return { ...made, files, columnar: logged.find((l) => l.columnar !== undefined)?.columnar };
  }

  it('splits, fits and writes from typed columns the very bytes the rows give, on DuckDB and in the warehouse', async () => {
    const columns = await step(onDuckDB);
    const rows = await step(onDuckDB, false);
    const warehouse = await step(db);
    expect([columns.columnar, rows.columnar, warehouse.columnar]).toEqual([true, false, false]);
    expect(columns.result.rows).toBeGreaterThan(150);
    expect(columns.result.splits.holdout).toBeGreaterThan(0);
    for (const other of [rows, warehouse]) {
      // The id is a digest of the rows: the same id says the columns were digested as the rows are.
      expect(columns.result).toEqual(other.result);
      expect(columns.files.map((f) => f.length)).toEqual(other.files.map((f) => f.length));
      columns.files.forEach((f, i) => {
        expect(f.equals(other.files[i] as Buffer), columns.result.files[i]).toBe(true);
      });
      expect(columns.rows).toEqual(other.rows);
    }
  });

  it('digests columns as JSON.stringify digests the same rows: odd names, nulls, non-finite numbers, quotes, times', () => {
    const rng = new Rng(8);
    const rows: LabelledRow[] = Array.from({ length: 9000 }, (_, i) => ({
      customerId: i % 17 === 0 ? `q"\\${i}\u00e9` : `r${i}`,
      features: {
        'a b': i % 7 === 0 ? null : rng.next() * 1e3 - 500,
        n: [-0, 1e21, 1e-7, 5e15, 3][i % 5] as number,
        kind: i % 11 === 0 ? null : i % 13 === 0 ? '' : (['x', 'y"z', '\u2028'][rng.int(0, 3)] as string),
      },
      label: (i % 3 === 0 ? 1 : 0) as 0 | 1,
      time: i % 19 === 0 ? Number.NaN : T - rng.int(0, 50) * HOUR,
    }));
    const table = columnsOfRows(rows, { numeric: ['a b', 'n'], categorical: ['kind'] });
    const head = [T, 48, 7, { holdout: 0.2, validation: 0.15, strategy: 'time' }];
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    expect(digestOfColumns(head, table)).toBe(sha(JSON.stringify([...head, rowsOfColumns(table)])));
    const { time: _, ...untimed } = table;
    expect(digestOfColumns([], untimed)).toBe(sha(JSON.stringify([rowsOfColumns(untimed)])));
  });
});

describe("the fit's radix sort", () => {
  it('orders numbers as Float64Array.prototype.sort does, bit for bit (-0 before 0, negatives, ties, every magnitude)', () => {
    const rng = new Rng(9);
    const draws: (() => number)[] = [
      () => rng.int(0, 40),
      () => (rng.next() - 0.5) * 1e6,
      () => (rng.next() < 0.5 ? -0 : 0),
      () => (rng.next() - 0.5) * 10 ** rng.int(-300, 300),
      () => Math.round(rng.next() * 1e6) / 1e4 - 50,
    ];
    for (const size of [10, 5000, 70_000])
      for (const mix of [[0], [1], [0, 2], [3], [0, 1, 2, 3, 4]]) {
        const a = Float64Array.from({ length: size }, () =>
          (draws[mix[rng.int(0, mix.length)] as number] as () => number)(),
        );
        const expected = a.slice().sort();
        const float64Bits = (x: Float64Array) =>
          Array.from(new BigUint64Array(x.buffer, x.byteOffset, x.length));
        expect(float64Bits(sortNumbers(a))).toEqual(float64Bits(expected));
      }
  });
});

describe('the fit without a sort', () => {
  it('finds the median, the extremes and a near-constant share as sorting the values does', () => {
    const rng = new Rng(4);
    const n = 3000;
    const columns: Record<string, (i: number) => number | null> = {
      counts: () => rng.int(0, 6),
      even: (i) => (i < n / 2 ? 1 : 2), // an even split: the median lies between two values
      signed: () => (rng.next() < 0.5 ? -0 : 0) + (rng.next() < 0.3 ? rng.int(-5, 5) : 0),
      mostlyZero: (i) => (i % 400 === 0 ? 3 : 0), // 99.75%: dropped
      mostlyMissing: (i) => (i % 300 === 0 ? rng.next() : null), // missing count as the median
      justBelow: (i) => (i % 150 < 2 ? 1 : 0), // 98.7%: kept
      floats: () => Math.round((rng.next() - 0.3) * 1e6) / 1e3,
    };
    const rows = Array.from({ length: n }, (_, i) =>
      Object.fromEntries(Object.entries(columns).map(([k, f]) => [k, f(i)])),
    );
    const names = Object.keys(columns);
    const state = fitTransform(rows, { numeric: names, categorical: [] }, { maxCorrelation: 1.1 });
    for (const name of names) {
      const present = Float64Array.from(
        rows.map((r) => r[name]).filter((v): v is number => v !== null),
      ).sort();
      const missing = n - present.length;
      const median = quantile(present, 0.5);
      let top = missing;
      for (let i = 0; i < present.length; ) {
        let j = i;
        while (j < present.length && present[j] === present[i]) j++;
        top = Math.max(top, j - i + (present[i] === median ? missing : 0));
        i = j;
      }
      const fitted = state.numeric.find((s) => s.name === name);
      if (top / n >= 0.995) {
        expect(fitted).toBeUndefined();
        expect(state.dropped.find((d) => d.name === name)?.reason).toBe(
          `near-constant: one value in ${((top / n) * 100).toFixed(4)}% of training rows`,
        );
      } else {
        expect(fitted?.impute).toBe(median);
        expect(fitted?.min).toBe((present[0] as number) + 0);
        expect(fitted?.max).toBe((present[present.length - 1] as number) + 0);
      }
    }
    expect(state.dropped.map((d) => d.name).sort()).toEqual(['mostlyMissing', 'mostlyZero']);
  });
});
