import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildChurnRows,
  isDriftwoodError,
  loadConfig,
  loadContract,
  openObjectStore,
  openWarehouse,
  Rng,
  tokenise,
  type Warehouse,
} from '@driftwood/tasks';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runForget } from '../../tasks/src/forget/index.js';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { ensureContractTables } from '../../tasks/src/ingest/schema.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import { columnarKey, columnarPrefix, syncColumnar } from '../../tasks/src/warehouse/columnar.js';
import { silentLog, tempHome } from '../support/env.js';

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

  it('reads the Parquet files kept in the lake: in step after rows are reloaded, taken over or erased, never duplicated', async () => {
    const lake = openObjectStore(`file://${path.join(tempHome('driftwood-engines-lake-'), 'lake')}`);
    const contract = await loadContract('churn');
    const same = async () =>
      expect(await buildChurnRows(w.db, T, 48, { engine: 'duckdb', lake })).toEqual(
        await buildChurnRows(w.db, T, 48, { engine: 'warehouse' }),
      );
    const files = async () => (await lake.list(columnarPrefix('churn', 'events'))).map((o) => o.key);
    await same();
    expect(await files()).toEqual([columnarKey('churn', 'events', 'test', 'none', 6000)]);
    // In step: nothing is written again.
    expect(await syncColumnar(w.db, lake, contract, 'events')).toEqual({
      written: 0,
      removed: 0,
      rows: 6000,
      reconciled: false,
    });
    // An object loaded through ingest (with its ledger entry) that takes over two events by key.
    const source = 'raw/churn/dt=2026-11-19/hr=05/events.csv';
    await w.db('events').whereIn('event_id', [11, 12]).update({ source_key: source, value: 999.5 });
    await w.db('ingest_ledger').insert({
      object_key: source,
      dataset: 'churn',
      etag: 'e1',
      sha256: 'ab'.repeat(32),
      size: 1,
      status: 'loaded',
      rows_read: 2,
      rows_loaded: 2,
      loaded_at: T,
    });
    // Loading the object again (ingest passes it as changed) rewrites its file, never adds one.
    for (let run = 0; run < 2; run++) {
      const sync = await syncColumnar(w.db, lake, contract, 'events', [source]);
      expect(sync.rows).toBe(6000);
    }
    expect((await files()).sort()).toEqual(
      [
        columnarKey('churn', 'events', 'test', 'none', 5998),
        'columnar/churn/events/dt=2026-11-19/hr=05/events.csv.abababababababab.2.parquet',
      ].sort(),
    );
    await same();
    // Rows erased in the warehouse leave the Parquet files at the next build.
    await w.db('events').where({ event_id: 13 }).delete();
    await same();
    expect(await files()).toContain(columnarKey('churn', 'events', 'test', 'none', 5997));
    await w.db('events').insert({
      event_id: 13,
      customer_id: 'C0',
      event_time: T - DAY,
      event_type: 'session',
      value: 1,
      source_key: 'test',
    });
  });

  it('keeps PII tokenised in the Parquet files as the warehouse stores it', async () => {
    const lake = openObjectStore(`file://${path.join(tempHome('driftwood-engines-pii-'), 'lake')}`);
    const token = tokenise('ada@example.com', 'k'.repeat(32));
    await w.db('customers').where({ customer_id: 'C0' }).update({ email_token: token });
    await syncColumnar(w.db, lake, await loadContract('churn'), 'customers');
    const [key] = (await lake.list(columnarPrefix('churn', 'customers'))).map((o) => o.key);
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    const file = path.join(fileURLToPath(lake.uri), key as string);
    const read = await duck.runAndReadAll(`SELECT * FROM read_parquet('${file}') WHERE customer_id = 'C0'`);
    expect(read.columnNames()).not.toContain('email');
    expect(read.getRowObjects()[0]?.email_token).toBe(token);
    duck.closeSync();
  });

  it('builds with the engine the warehouse was opened with when none is passed', async () => {
    const timings = {};
    const rows = await buildChurnRows(w.onDuckDB, T, 48, { timings });
    // Only the DuckDB engine has these phases: the build went there, and gave the warehouse's rows.
    expect(Object.keys(timings)).toEqual(
      expect.arrayContaining(['sync', 'aggregate', 'readBack', 'order', 'rows']),
    );
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

describe('ingest keeps the events as Parquet in the lake for the DuckDB engine', () => {
  it('writes one file per loaded events object, rewrites a reloaded one, drops an erased customer, and the engine builds the warehouse rows from them', async () => {
    const dir = tempHome('driftwood-engines-ingest-');
    const lake = openObjectStore(`file://${path.join(dir, 'lake')}`);
    const db = await openWarehouse(`sqlite://${path.join(dir, 'w.db')}`, { featureEngine: 'duckdb', lake });
    try {
      await runSimulate(
        { dataset: 'churn', start: T - 3 * DAY, hours: 30, seed: 5, entities: 150, labelDelayHours: 2 },
        { lake, log: silentLog },
      );
      const ingest = () =>
        runIngest({ dataset: 'churn', piiKey: 'k'.repeat(32), now: () => T }, { lake, db, log: silentLog });
      const first = await ingest();
      const eventsLoaded = first.files.filter((f) => f.table === 'events' && f.status === 'loaded');
      expect(eventsLoaded.length).toBeGreaterThan(20);
      const mirror = async () =>
        new Map((await lake.list(columnarPrefix('churn', 'events'))).map((o) => [o.key, o.etag]));
      const files = await mirror();
      expect(files.size).toBe(eventsLoaded.length);
      const rows = [...files.keys()].reduce((n, k) => n + Number(/\.(\d+)\.parquet$/.exec(k)?.[1]), 0);
      expect(rows).toBe(Number((await db('events').count({ n: '*' }))[0]?.n));
      const cutoff = T - 12 * HOUR;
      const same = async () => {
        const inWarehouse = await buildChurnRows(db, cutoff, 4, { engine: 'warehouse' });
        expect(inWarehouse.some((r) => (r.features.sessions_90d as number) > 0)).toBe(true);
        expect(await buildChurnRows(db, cutoff, 4)).toEqual(inWarehouse);
      };
      await same();
      // A re-run loads nothing and leaves every file as it was.
      await ingest();
      expect(await mirror()).toEqual(files);
      // A delivery replaced in the lake is loaded again: its file is rewritten, none is added.
      const key = eventsLoaded[0]?.key as string;
      const text = (await lake.get(key)).toString('utf8').trimEnd().split('\n');
      await lake.put(key, `${text.slice(0, -1).join('\n')}\n`);
      const second = await ingest();
      expect(second.loaded).toBe(1);
      const after = await mirror();
      expect(after.size).toBe(files.size);
      expect([...after.keys()].filter((k) => !files.has(k))).toHaveLength(1);
      await same();
      // An erased customer leaves the Parquet files with the warehouse.
      const [{ customer_id: erased }] = await db('events').select('customer_id').limit(1);
      await runForget(
        { customerId: erased, dataset: 'churn', piiKey: 'k'.repeat(32), now: () => T },
        { lake, db, log: silentLog },
      );
      const { DuckDBInstance } = await import('@duckdb/node-api');
      const duck = await (await DuckDBInstance.create(':memory:')).connect();
      const paths = [...(await mirror()).keys()].map((k) => `'${path.join(dir, 'lake', k)}'`);
      const left = await duck.runAndReadAll(
        `SELECT count(*) FILTER (WHERE customer_id = '${erased}') AS erased, count(*) AS n FROM read_parquet([${paths.join(',')}])`,
      );
      duck.closeSync();
      expect(left.getRowObjects()[0]).toEqual({
        erased: 0n,
        n: BigInt(Number((await db('events').count({ n: '*' }))[0]?.n)),
      });
      await same();
    } finally {
      await db.destroy();
    }
  });
});
