import { randomBytes } from 'node:crypto';
import path from 'node:path';
import {
  buildChurnRows,
  isDriftwoodError,
  loadConfig,
  loadContract,
  openWarehouse,
  Rng,
  type Warehouse,
} from '@driftwood/tasks';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureContractTables } from '../../tasks/src/ingest/schema.js';
import { tempHome } from '../support/env.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T = Date.UTC(2026, 10, 20); // the cutoff
const PG_ADMIN = process.env.DRIFTWOOD_TEST_PG_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TYPES = ['session', 'session', 'session', 'purchase', 'support_ticket', 'payment_failure', 'other'];
// Every window's edge, on both sides: an off-by-one in either engine moves an event between windows.
const EDGES = [0, 3, 7, 30, 37, 90].flatMap((d) => [T - d * DAY, T - d * DAY - 1, T - d * DAY + 1]);

/**
 * Customers and events that give the aggregation work in every corner: ids whose order differs
 * between byte order and a locale's (`c1`, `C10`, `C9`, `b_2`), customers signed up at or after the
 * cutoff, labels before, inside and after the horizon, events on every window edge and after the
 * cutoff, null values, an event type no feature counts, and sums of decimals whose rounding
 * depends on the order they are added in.
 */
async function seed(db: Warehouse): Promise<void> {
  const rng = new Rng(11);
  const ids = Array.from({ length: 300 }, (_, i) => `${['C', 'c', 'b_', 'Z'][i % 4]}${i}`);
  await db.batchInsert(
    'customers',
    ids.map((id, i) => ({
      customer_id: id,
      email_token: null,
      signup_at: i % 29 === 0 ? T + (i % 2) * DAY : T - rng.int(1, 900) * DAY,
      plan: ['basic', 'standard', 'premium'][i % 3],
      region: ['north', 'south', 'east', 'west'][i % 4],
      monthly_charges: Math.round((19 + 30 * rng.next()) * 100) / 100,
      source_key: 'test',
    })),
    200,
  );
  const events = Array.from({ length: 6000 }, (_, i) => {
    const type = TYPES[rng.int(0, TYPES.length)] as string;
    return {
      event_id: i + 1,
      customer_id: ids[rng.int(0, ids.length)],
      event_time: i % 10 === 0 ? (EDGES[i % EDGES.length] as number) : T - rng.int(-5 * DAY, 120 * DAY),
      event_type: type,
      value: i % 97 === 0 ? null : Math.round(rng.next() * 6000) / 100 + 0.1,
      source_key: 'test',
    };
  });
  await db.batchInsert('events', events, 500);
  await db.batchInsert(
    'labels',
    ids
      .filter((_, i) => i % 5 === 0)
      .map((id) => {
        const churnedAt = T + rng.int(-10 * DAY, 5 * DAY);
        return { customer_id: id, churned_at: churnedAt, reported_at: churnedAt + DAY, source_key: 'test' };
      }),
    200,
  );
}

/** The same warehouse opened twice: with the default engine, and with DuckDB as its feature engine. */
interface Opened {
  db: Warehouse;
  onDuckDB: Warehouse;
  close: () => Promise<void>;
}

function sameOnBothEngines(open: () => Promise<Opened>) {
  let w: Awaited<ReturnType<typeof open>>;
  beforeAll(async () => {
    w = await open();
    await seed(w.db);
  });
  afterAll(async () => {
    await w?.close();
  });

  it('builds the same rows, labels and values in the same order on DuckDB as in the warehouse', async () => {
    for (const horizon of [4, 48, 24 * 7]) {
      const inWarehouse = await buildChurnRows(w.db, T, horizon, { engine: 'warehouse' });
      const inDuckDB = await buildChurnRows(w.db, T, horizon, { engine: 'duckdb' });
      // The data leaves out customers not yet signed up or already gone, and labels some of the rest.
      expect(inWarehouse.length).toBeGreaterThan(200);
      expect(inWarehouse.length).toBeLessThan(300);
      expect(inWarehouse.some((r) => r.label === 1)).toBe(true);
      expect(inWarehouse.some((r) => r.features.avg_session_minutes_30d === null)).toBe(true);
      expect(inWarehouse.some((r) => (r.features.spend_30d as number) > 0)).toBe(true);
      expect(inDuckDB).toEqual(inWarehouse);
    }
  });

  it('builds the same rows at a cutoff with no events before it', async () => {
    const early = T - 400 * DAY;
    expect(await buildChurnRows(w.db, early, 48, { engine: 'duckdb' })).toEqual(
      await buildChurnRows(w.db, early, 48, { engine: 'warehouse' }),
    );
  });

  it('builds with the engine the warehouse was opened with when none is passed', async () => {
    const timings = {};
    const rows = await buildChurnRows(w.onDuckDB, T, 48, { timings });
    // Only the DuckDB engine has these phases: the build went there, and gave the warehouse's rows.
    expect(Object.keys(timings)).toEqual(expect.arrayContaining(['read', 'append', 'aggregate', 'readBack']));
    expect(rows).toEqual(await buildChurnRows(w.db, T, 48));
    const inWarehouse = {};
    await buildChurnRows(w.db, T, 48, { timings: inWarehouse });
    expect(Object.keys(inWarehouse)).toEqual(['aggregate', 'rows']);
  });
}

describe('feature engine setting', () => {
  it.each([
    [undefined, 'warehouse'],
    ['', 'warehouse'],
    ['sqlite', 'warehouse'],
    ['postgres', 'warehouse'],
    ['warehouse', 'warehouse'],
    ['DuckDB', 'duckdb'],
  ])('DRIFTWOOD_FEATURE_ENGINE=%s is the %s engine', (value, engine) => {
    expect(loadConfig({ DRIFTWOOD_FEATURE_ENGINE: value }).featureEngine).toBe(engine);
  });

  it('refuses an engine it does not know, naming the ones it does', () => {
    let error: unknown;
    try {
      loadConfig({ DRIFTWOOD_FEATURE_ENGINE: 'spark' });
    } catch (err) {
      error = err;
    }
    expect(isDriftwoodError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toBe(
      "setting DRIFTWOOD_FEATURE_ENGINE: expected one of warehouse, sqlite, postgres, duckdb, got 'spark'",
    );
    expect((error as { exitCode: number }).exitCode).toBe(2);
  });
});

describe('churn features on SQLite and on DuckDB', () => {
  sameOnBothEngines(async () => {
    const url = `sqlite://${path.join(tempHome('driftwood-engines-'), 'w.db')}`;
    const db = await openWarehouse(url);
    await ensureContractTables(db, await loadContract('churn'));
    const onDuckDB = await openWarehouse(url, { featureEngine: 'duckdb' });
    return { db, onDuckDB, close: async () => void (await Promise.all([db.destroy(), onDuckDB.destroy()])) };
  });
});

describe('churn features on PostgreSQL and on DuckDB', () => {
  const admin = knexFactory({ client: 'pg', connection: PG_ADMIN, pool: { min: 0, max: 1 } });
  const created: string[] = [];
  afterAll(async () => {
    for (const name of created) await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.destroy();
  });
  sameOnBothEngines(async () => {
    const name = `driftwood_engines_${randomBytes(4).toString('hex')}`;
    await admin.raw(`CREATE DATABASE ${name}`);
    created.push(name);
    const url = PG_ADMIN.replace(/\/[^/]*$/, `/${name}`);
    const db = await openWarehouse(url);
    await ensureContractTables(db, await loadContract('churn'));
    const onDuckDB = await openWarehouse(url, { featureEngine: 'duckdb' });
    return { db, onDuckDB, close: async () => void (await Promise.all([db.destroy(), onDuckDB.destroy()])) };
  });
});
