import { randomBytes } from 'node:crypto';
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
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
