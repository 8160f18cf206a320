import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type ObjectStore, openObjectStore, openWarehouse, type Warehouse } from '@driftwood/tasks';
import { parquetWriteBuffer } from 'hyparquet-writer';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateContract } from '../../tasks/src/contracts/index.js';
import type { Contract } from '../../tasks/src/contracts/types.js';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import { runCli, silentLog, tempHome } from '../support/env.js';

const PII_KEY = 'test-key-0123456789abcdef';
const PG_DB = process.env.DRIFTWOOD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `dwi_${Date.now().toString(36)}_${process.pid}`;
const opts = { dataset: 'churn', piiKey: PII_KEY, now: () => Date.parse('2026-11-05T00:00:00Z') };

/** One warehouse per backend: a SQLite file, or a fresh schema in the local PostgreSQL's test db. */
interface Backend {
  name: string;
  url(tag: string): Promise<string>;
  cleanup(): Promise<void>;
}

const sqlite = (home: string): Backend => ({
  name: 'SQLite',
  url: async (tag) => `sqlite://${path.join(home, `${tag}.db`)}`,
  cleanup: async () => {},
});

function postgres(): Backend {
  const admin = knexFactory({ client: 'pg', connection: PG_DB, pool: { min: 0, max: 1 } });
  const schemas: string[] = [];
  return {
    name: 'PostgreSQL',
    url: async (tag) => {
      const schema = `${RUN}_${tag}`.toLowerCase();
      await admin.raw(`CREATE SCHEMA ${schema}`);
      schemas.push(schema);
      return `${PG_DB}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    },
    cleanup: async () => {
      for (const s of schemas) await admin.raw(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      await admin.destroy();
    },
  };
}

const count = async (db: Warehouse, table: string, where: Record<string, unknown> = {}) =>
  Number((await db(table).where(where).count({ n: '*' }))[0]?.n);

const reasonOf = async (lake: ObjectStore, key: string) =>
  JSON.parse((await lake.get(`${key.replace(/^raw\//, 'quarantine/')}.reason.json`)).toString());

/** Every loaded file's rows are all in the warehouse, and read = loaded + quarantined for every file. */
async function expectConsistent(db: Warehouse): Promise<void> {
  const ledger = await db('ingest_ledger').select('*');
  for (const e of ledger) {
    expect(Number(e.rows_read), e.object_key).toBe(Number(e.rows_loaded) + Number(e.rows_quarantined));
    if (e.status !== 'loaded') expect(Number(e.rows_loaded)).toBe(0);
  }
  for (const table of ['customers', 'events', 'labels']) {
    const bySource = await db(table).select('source_key').count({ n: '*' }).groupBy('source_key');
    for (const r of bySource) {
      const entry = ledger.find((e) => e.object_key === r.source_key);
      expect(entry?.status, `${table} rows from ${r.source_key}`).toBe('loaded');
      expect(Number(r.n)).toBe(Number(entry?.rows_loaded));
    }
  }
}

const home = tempHome('driftwood-ingest-');
const backends: Backend[] = [sqlite(home), postgres()];
afterAll(async () => {
  for (const b of backends) await b.cleanup();
});

describe.each(backends)('ingest into $name', (backend) => {
  let lake: ObjectStore;
  let db: Warehouse;
  const alerts: unknown[] = [];
  let receiver: Server;
  let webhook: string;

  beforeAll(async () => {
    const dir = tempHome('driftwood-ingest-lake-');
    lake = openObjectStore(`file://${path.join(dir, 'lake')}`);
    db = await openWarehouse(await backend.url('main'));
    await runSimulate(
      {
        dataset: 'churn',
        start: Date.parse('2026-11-01T00:00:00Z'),
        hours: 30,
        seed: 5,
        entities: 200,
        labelDelayHours: 2,
      },
      { lake, log: silentLog },
    );
    // A local receiver in Slack's incoming-webhook shape: records the JSON it gets, answers "ok".
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        alerts.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    webhook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/ingest`;
  });
  afterAll(async () => {
    await db?.destroy();
    await new Promise((r) => receiver.close(r));
  });

  it('loads every file once, the accounting balances, and a re-run is a no-op', async () => {
    const first = await runIngest(opts, { lake, db, log: silentLog });
    expect(first.loaded).toBe(first.objectsSeen);
    expect(first.rowsLoaded).toBe(first.rowsRead);
    expect(first.rowsCorrected).toBe(0);
    const before = { customers: await count(db, 'customers'), events: await count(db, 'events') };
    expect(before.customers).toBeGreaterThanOrEqual(200);
    expect(first.rowsLoaded).toBe(before.customers + before.events + (await count(db, 'labels')));
    const again = await runIngest(opts, { lake, db, log: silentLog });
    expect(again).toMatchObject({ loaded: 0, rowsRead: 0, skipped: first.objectsSeen, reportKey: '' });
    expect({ customers: await count(db, 'customers'), events: await count(db, 'events') }).toEqual(before);
    // The run's report is in the lake.
    const report = JSON.parse((await lake.get(first.reportKey)).toString());
    expect(report.files).toHaveLength(first.objectsSeen);
    await expectConsistent(db);
  });

  it('loads only the hours of an interval', async () => {
    const head = 'event_id,customer_id,event_time,event_type,value\n';
    await lake.put(
      'raw/churn/dt=2026-11-03/hr=00/events.csv',
      `${head}999001,C000001,2026-11-03T00:10:00Z,session,3\n`,
    );
    await lake.put(
      'raw/churn/dt=2026-11-03/hr=01/events.csv',
      `${head}999002,C000001,2026-11-03T01:10:00Z,session,3\n`,
    );
    const r = await runIngest(
      { ...opts, interval: { start: Date.parse('2026-11-03T00:00Z'), end: Date.parse('2026-11-03T01:00Z') } },
      { lake, db, log: silentLog },
    );
    expect(r.loaded).toBe(1);
    expect(await count(db, 'events', { event_id: 999001 })).toBe(1);
    expect(await count(db, 'events', { event_id: 999002 })).toBe(0);
    await runIngest(opts, { lake, db, log: silentLog });
  });

  it('quarantines a file missing a required column, with the reason, and loads nothing from it', async () => {
    const key = 'raw/churn/dt=2026-11-04/hr=00/events.csv';
    await lake.put(key, 'event_id,customer_id,event_type\n1,C1,session\n');
    const r = await runIngest(opts, { lake, db, log: silentLog });
    expect(r.quarantined).toBe(1);
    expect(r.anomalies.missing_column).toBe(1);
    const reason = await reasonOf(lake, key);
    expect(reason).toMatchObject({ file_status: 'quarantined', rule: 'missing_column' });
    expect(reason.reason).toMatch(/missing required column\(s\): event_time/);
    expect((await lake.get(key.replace(/^raw\//, 'quarantine/'))).toString()).toContain('event_id');
    expect((await db('ingest_ledger').where({ object_key: key }).first()).status).toBe('quarantined');
    expect(await count(db, 'events', { source_key: key })).toBe(0);
  });

  it('applies each column policy, records every anomaly with row, column, value and rule, and balances', async () => {
    const key = 'raw/churn/dt=2026-11-04/hr=01/customers.csv';
    await lake.put(
      key,
      [
        'customer_id,email,signup_at,plan,region,monthly_charges,nickname',
        'X000001,x1@example.com,2026-01-01T00:00:00Z,basic,north,19.5,a', // good (extra column accepted)
        'X000002,x2@example.com,2026-01-01T00:00:00Z,basic,north, 42 ,b', // coerce " 42 " -> 42
        'X000003,x3@example.com,2026-01-01T00:00:00Z,basic,mars,19,c', // region unknown -> default north
        'X000004,x4@example.com,2026-01-01T00:00:00Z,gold,north,19,d', // plan unknown -> drop_row
        'X000005,x5@example.com,2026-01-01T00:00:00Z,basic,north,abc,e', // not a number, cannot coerce -> dropped
        'X000006,x6@example.com,2026-01-01T00:00:00Z,basic,north, ,f', // blank -> null, not nullable -> dropped
        'X000007,x7@example.com,yesterday,basic,north,19,g', // not a time -> drop_row
        'X000008,x8@example.com,2026-01-01T00:00:00Z,basic', // truncated line -> malformed row
      ].join('\n'),
    );
    const r = await runIngest({ ...opts, alertWebhook: webhook }, { lake, db, log: silentLog });
    const file = r.files.find((f) => f.key === key);
    expect(file).toMatchObject({
      status: 'loaded',
      rowsRead: 8,
      rowsGood: 1,
      rowsCorrected: 2,
      rowsQuarantined: 5,
    });
    expect(file?.extraColumns).toEqual(['nickname']);
    expect((file?.rowsGood ?? 0) + (file?.rowsCorrected ?? 0) + (file?.rowsQuarantined ?? 0)).toBe(
      file?.rowsRead,
    );
    expect(file?.anomalies).toEqual({ extra_column: 1, type: 3, allowed: 2, blank: 1, malformed_row: 1 });
    const stored = await db('customers')
      .whereIn('customer_id', ['X000001', 'X000002', 'X000003'])
      .orderBy('customer_id');
    expect(stored.map((c) => [c.customer_id, Number(c.monthly_charges), c.region])).toEqual([
      ['X000001', 19.5, 'north'],
      ['X000002', 42, 'north'],
      ['X000003', 19, 'north'],
    ]);
    expect(stored[0].email_token).toMatch(/^[0-9a-f]{32}$/);
    const reason = await reasonOf(lake, key);
    expect(reason.rows).toEqual({
      read: 8,
      good: 1,
      corrected: 2,
      quarantined: 5,
      duplicate_key: 0,
      loaded: 3,
    });
    const brief = reason.problems.map(
      (p: { row: number; column: string; value: unknown; rule: string; action: string }) => [
        p.row,
        p.column,
        p.value,
        p.rule,
        p.action,
      ],
    );
    expect(brief).toEqual([
      [3, 'monthly_charges', ' 42 ', 'type', 'corrected'],
      [4, 'region', 'mars', 'allowed', 'defaulted'],
      [5, 'plan', 'gold', 'allowed', 'dropped_row'],
      [6, 'monthly_charges', 'abc', 'type', 'dropped_row'],
      [7, 'monthly_charges', ' ', 'blank', 'dropped_row'],
      [8, 'signup_at', 'yesterday', 'type', 'dropped_row'],
      [9, null, null, 'malformed_row', 'dropped_row'],
    ]);
    const ledger = await db('ingest_ledger').where({ object_key: key }).first();
    expect(ledger).toMatchObject({ extra_columns: 'nickname', status: 'loaded' });
    // 7 of 8 rows corrected or dropped: far past the 5% threshold, so Slack hears about it.
    expect(r.alerts).toEqual({ sent: true, files: [key] });
    const message = alerts.at(-1) as { text: string; blocks: { text: { text: string } }[] };
    expect(message.text).toMatch(
      /Driftwood ingest \(churn\): 1 file\(s\) over the anomaly threshold of 5\.0%/,
    );
    expect(message.blocks[1]?.text.text).toContain(key);
    expect(JSON.stringify(message)).not.toContain('@example.com');
    await expectConsistent(db);
  });

  it('quarantines the whole file when a quarantine_file column breaks, and loads none of it', async () => {
    const key = 'raw/churn/dt=2026-11-04/hr=02/customers.csv';
    await lake.put(
      key,
      'customer_id,email,signup_at,plan,region,monthly_charges\nY000001,,2026-01-01T00:00:00Z,basic,north,19\n,,2026-01-01T00:00:00Z,basic,north,19\n',
    );
    const r = await runIngest(opts, { lake, db, log: silentLog });
    expect(r.files[0]).toMatchObject({ key, status: 'quarantined', rowsRead: 2, rowsQuarantined: 2 });
    expect(await count(db, 'customers', { customer_id: 'Y000001' })).toBe(0);
    const reason = await reasonOf(lake, key);
    expect(reason.problems.at(-1)).toMatchObject({
      row: 3,
      column: 'customer_id',
      rule: 'null',
      action: 'quarantined_file',
    });
  });

  it('treats a column whose values mostly changed type as a type change and quarantines the file', async () => {
    const key = 'raw/churn/dt=2026-11-04/hr=03/events.csv';
    const rows = [1, 2, 3].map((i) => `70000${i},C000001,2026-11-04T03:0${i}:00Z,purchase,EUR ${i}`);
    await lake.put(key, `event_id,customer_id,event_time,event_type,value\n${rows.join('\n')}\n`);
    const r = await runIngest(opts, { lake, db, log: silentLog });
    expect(r.files[0]).toMatchObject({ status: 'quarantined', anomalies: { type: 3, type_change: 1 } });
    expect((await reasonOf(lake, key)).reason).toMatch(/column value: 3 of 3 values have the wrong type/);
    expect(await count(db, 'events', { source_key: key })).toBe(0);
  });

  it('reads JSON Lines and Parquet, coercing text numbers in a typed file', async () => {
    const jsonl = 'raw/churn/dt=2026-11-04/hr=04/events.jsonl';
    await lake.put(
      jsonl,
      [
        {
          event_id: 710001,
          customer_id: 'C000001',
          event_time: '2026-11-04T04:00:00Z',
          event_type: 'session',
          value: 3,
        },
        {
          event_id: 710002,
          customer_id: 'C000001',
          event_time: '2026-11-04T04:05:00Z',
          event_type: 'purchase',
          value: '42',
        },
        '{"event_id": 710003, broken',
      ]
        .map((x) => (typeof x === 'string' ? x : JSON.stringify(x)))
        .join('\n'),
    );
    const parquet = 'raw/churn/dt=2026-11-04/hr=04/events.parquet';
    // More rows than one insert batch (1000), in row groups of 1000.
    const n = 2500;
    const ids = Array.from({ length: n }, (_, i) => BigInt(720000 + i));
    await lake.put(
      parquet,
      Buffer.from(
        parquetWriteBuffer({
          columnData: [
            { name: 'event_id', data: ids, type: 'INT64' },
            { name: 'customer_id', data: ids.map(() => 'C000002'), type: 'STRING' },
            {
              name: 'event_time',
              data: ids.map((_, i) => new Date(Date.parse('2026-11-04T04:00:00Z') + i * 1000)),
              type: 'TIMESTAMP',
            },
            { name: 'event_type', data: ids.map(() => 'session'), type: 'STRING' },
            { name: 'value', data: ids.map((_, i) => i / 2), type: 'DOUBLE' },
          ],
          rowGroupSize: 1000,
        }),
      ),
    );
    const r = await runIngest(opts, { lake, db, log: silentLog });
    expect(r.files.find((f) => f.key === jsonl)).toMatchObject({
      rowsRead: 3,
      rowsGood: 1,
      rowsCorrected: 1,
      rowsQuarantined: 1,
    });
    expect(Number((await db('events').where({ event_id: 710002 }).first()).value)).toBe(42);
    expect(
      (await reasonOf(lake, jsonl)).problems.map((p: { row: number; rule: string }) => [p.row, p.rule]),
    ).toEqual([
      [2, 'type'],
      [3, 'malformed_row'],
    ]);
    expect(r.files.find((f) => f.key === parquet)).toMatchObject({
      status: 'loaded',
      rowsRead: n,
      rowsGood: n,
    });
    const last = await db('events')
      .where({ event_id: 720000 + n - 1 })
      .first();
    expect(Number(last.event_time)).toBe(Date.parse('2026-11-04T04:00:00Z') + (n - 1) * 1000);
    await expectConsistent(db);
  });

  it('records the same content under another key as a duplicate', async () => {
    const body = await lake.get('raw/churn/dt=2026-11-01/hr=05/events.csv');
    await lake.put('raw/churn/dt=2026-11-04/hr=05/events.csv', body);
    const r = await runIngest(opts, { lake, db, log: silentLog });
    expect(r.duplicates).toBe(1);
    const entry = await db('ingest_ledger')
      .where({ object_key: 'raw/churn/dt=2026-11-04/hr=05/events.csv' })
      .first();
    expect(entry.status).toBe('duplicate');
    expect(entry.reason).toMatch(/dt=2026-11-01\/hr=05/);
    expect(await count(db, 'events', { source_key: 'raw/churn/dt=2026-11-04/hr=05/events.csv' })).toBe(0);
  });

  it('handles every anomaly kind the simulator plants, per policy, and every file balances', async () => {
    const dir = tempHome('driftwood-anomaly-lake-');
    const anomalyLake = openObjectStore(`file://${path.join(dir, 'lake')}`);
    const sim = await runSimulate(
      {
        dataset: 'churn',
        start: Date.parse('2026-11-01T00:00:00Z'),
        hours: 24,
        seed: 21,
        entities: 200,
        labelDelayHours: 2,
        anomalies: 0.6,
      },
      { lake: anomalyLake, log: silentLog },
    );
    const planted = sim.planted ?? [];
    expect(new Set(planted.map((p) => p.kind))).toEqual(
      new Set([
        'missing_column',
        'string_in_number',
        'blank_number',
        'unknown_category',
        'duplicated_file',
        'truncated_file',
      ]),
    );
    const adb = await openWarehouse(await backend.url('anomalies'));
    try {
      const r = await runIngest(opts, { lake: anomalyLake, db: adb, log: silentLog });
      const byKey = new Map(r.files.map((f) => [f.key, f]));
      for (const f of r.files)
        expect(f.rowsGood + f.rowsCorrected + f.rowsQuarantined, f.key).toBe(f.rowsRead);
      const expected: Record<string, (key: string) => void> = {
        missing_column: (k) =>
          expect(byKey.get(k)).toMatchObject({ status: 'quarantined', anomalies: { missing_column: 1 } }),
        string_in_number: (k) => expect(byKey.get(k)?.anomalies.type, k).toBeGreaterThanOrEqual(1),
        blank_number: (k) => expect(byKey.get(k)?.anomalies.blank, k).toBeGreaterThanOrEqual(1),
        unknown_category: (k) => expect(byKey.get(k)?.anomalies.allowed, k).toBeGreaterThanOrEqual(1),
        truncated_file: (k) => expect(byKey.get(k)?.rowsQuarantined, k).toBe(1),
        duplicated_file: (k) => {
          const resent = `${k.slice(0, k.lastIndexOf('/'))}/resent/${k.slice(k.lastIndexOf('/') + 1)}`;
          expect(byKey.get(resent)?.status, resent).toBe('duplicate');
        },
      };
      for (const p of planted) expected[p.kind]?.(p.key);
      expect(r.duplicates).toBe(planted.filter((p) => p.kind === 'duplicated_file').length);
      expect(r.quarantined).toBe(planted.filter((p) => p.kind === 'missing_column').length);
      await expectConsistent(adb);
    } finally {
      await adb.destroy();
    }
  });

  it('keeps the last row of a key that repeats across batches (upserts on SQLite, COPY + merge on PostgreSQL)', async () => {
    const key = 'raw/churn/dt=2026-11-04/hr=06/events.csv';
    const rows = [1, 2, 3, 4, 5].map(
      (i) => `${i === 5 ? 730001 : 730000 + i},C000001,2026-11-04T06:0${i}:00Z,session,${i}`,
    );
    await lake.put(key, `event_id,customer_id,event_time,event_type,value\n${rows.join('\n')}\n`);
    const r = await runIngest({ ...opts, batchRows: 2 }, { lake, db, log: silentLog });
    expect(r.files.find((f) => f.key === key)).toMatchObject({ rowsRead: 5, rowsGood: 5 });
    expect(Number((await db('events').where({ event_id: 730001 }).first()).value)).toBe(5);
    expect(await count(db, 'events', { source_key: key })).toBe(4);
  });

  it('stores emails only as tokens', async () => {
    const rows = await db('customers').select('*').limit(50);
    for (const r of rows) {
      expect(JSON.stringify(r)).not.toMatch(/@example\.com/);
      if (r.email_token !== null) expect(r.email_token).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  // A real kill -9 of the CLI at each point of a file's load; the next run must finish the job once.
  describe('exactly once under a killed run', () => {
    const points = ['file_start:3', 'mid_rows:2', 'after_rows:4', 'after_quarantine:5', 'after_commit:6'];
    let killLake: string;
    let reference: Record<string, number>;
    const totals = async (db: Warehouse) => ({
      customers: await count(db, 'customers'),
      events: await count(db, 'events'),
      labels: await count(db, 'labels'),
      ledger: await count(db, 'ingest_ledger'),
    });
    const env = (url: string, extra: Record<string, string> = {}) => ({
      DRIFTWOOD_HOME: path.join(home, 'cli'),
      DRIFTWOOD_LAKE_URI: `file://${killLake}`,
      DRIFTWOOD_WAREHOUSE_URL: url,
      DRIFTWOOD_PII_KEY: PII_KEY,
      ...extra,
    });
    const args = ['ingest', '--dataset', 'churn', '--until', '2026-11-02T00:00Z', '--batch-rows', '10'];

    beforeAll(async () => {
      const dir = tempHome('driftwood-kill-lake-');
      killLake = path.join(dir, 'lake');
      await runSimulate(
        {
          dataset: 'churn',
          start: Date.parse('2026-11-01T00:00:00Z'),
          hours: 4,
          seed: 9,
          entities: 400,
          labelDelayHours: 1,
        },
        { lake: openObjectStore(`file://${killLake}`), log: silentLog },
      );
      const url = await backend.url('ref');
      const clean = await runCli(args, env(url));
      expect(clean.code, clean.stderr).toBe(0);
      const ref = await openWarehouse(url);
      reference = await totals(ref);
      await ref.destroy();
      expect(reference.events).toBeGreaterThan(20);
    });

    it.each(points)('killed at %s: nothing half-loaded, the next run loads each file once', async (point) => {
      const url = await backend.url(`k_${point.replace(/[^a-z0-9]/g, '_')}`);
      const killed = await runCli(args, env(url, { DRIFTWOOD_INGEST_KILL_AT: point }));
      // -1: the process ended by a signal (SIGKILL), not an exit code.
      expect(killed.code, killed.stderr).toBe(-1);
      const db = await openWarehouse(url);
      try {
        const mid = await totals(db);
        expect(mid.ledger).toBeLessThan(reference.ledger);
        await expectConsistent(db);
        const rerun = await runCli(args, env(url));
        expect(rerun.code, rerun.stderr).toBe(0);
        expect(JSON.parse(rerun.stdout).loaded).toBe(reference.ledger - mid.ledger);
        expect(await totals(db)).toEqual(reference);
        await expectConsistent(db);
        const third = await runCli(args, env(url));
        expect(JSON.parse(third.stdout)).toMatchObject({ loaded: 0, rowsRead: 0 });
      } finally {
        await db.destroy();
      }
    });
  });
});

// PostgreSQL loads through a binary COPY when every column pairs naturally with its table type, and
// through a CSV COPY otherwise (a table created beforehand with other types): the same file must
// store the same values either way.
describe('PostgreSQL COPY formats', () => {
  const pg = postgres();
  afterAll(() => pg.cleanup());
  const columns = [
    { name: 'id', type: 'integer', role: 'id', nullable: false, on_anomaly: 'quarantine_file' },
    {
      name: 'email',
      type: 'string',
      role: 'pii',
      store_as: 'email_token',
      nullable: true,
      on_anomaly: 'coerce',
    },
    { name: 'at', type: 'timestamp', role: 'timestamp', nullable: false, on_anomaly: 'drop_row' },
    {
      name: 'plan',
      type: 'string',
      role: 'feature',
      nullable: false,
      allowed: ['basic', 'pro'],
      on_anomaly: 'drop_row',
    },
    { name: 'price', type: 'number', role: 'feature', nullable: true, on_anomaly: 'coerce' },
    { name: 'count', type: 'integer', role: 'feature', nullable: true, on_anomaly: { default: 0 } },
    { name: 'active', type: 'boolean', role: 'feature', nullable: true, on_anomaly: 'coerce' },
    { name: 'note', type: 'string', role: 'feature', nullable: true },
  ];
  const csv = [
    'id,email,at,plan,price,count,active,note',
    '1,A@example.com,2026-11-01T00:00:00Z,pro,19.5,3,true,"say ""hi"""',
    '2,,2026-11-01T00:00:01.250Z,basic,-0,,false,é',
    '3,b@example.org,2026-11-01 02:00,basic, 42 ,x,,',
    '4,,2026-11-01T03:00:00+02:00,gold,1,1,true,dropped',
    '5,,2026-11-01T04:00:00Z,pro,1e3,-7,TRUE,',
    '6,,2026-11-01T05:00:00Z,pro,0.1,9007199254740991,false,long',
    '7,,2026-11-01T06:00:00Z,basic,123456789.123456789,,,',
  ].join('\n');

  async function ingestInto(url: string, before?: string) {
    const db = await openWarehouse(url);
    if (before) await db.raw(before);
    const lake = openObjectStore(`file://${path.join(tempHome('driftwood-copy-formats-'), 'lake')}`);
    await lake.put('raw/items/dt=2026-11-01/hr=00/items.csv', `${csv}\n`);
    const contract = {
      ...(await validateContract(
        {
          dataset: 'items',
          version: 1,
          task: 'regression',
          builder: 'columns',
          tables: [{ name: 'items', files: ['items.csv'], key: 'id', columns }],
        },
        'items (test)',
      )),
      digest: 'test',
    } as Contract;
    try {
      const r = await runIngest({ ...opts, dataset: 'items', contract }, { lake, db, log: silentLog });
      const rows = await db('items').select('*').orderBy('id');
      return { r, rows };
    } finally {
      await db.destroy();
    }
  }

  it('stores the same rows through a binary COPY as through a CSV COPY', async () => {
    const binary = await ingestInto(await pg.url('bin'));
    // `price numeric` has no binary pair here: the whole file goes through the CSV COPY.
    const text = await ingestInto(
      await pg.url('csv'),
      'CREATE TABLE items (id bigint primary key, email_token varchar(64), at bigint not null, plan varchar(512) not null, price numeric, count bigint, active boolean, note varchar(512), source_key varchar(512) not null)',
    );
    for (const { r } of [binary, text]) expect(r).toMatchObject({ rowsRead: 7, rowsLoaded: 6 });
    const norm = (rows: Record<string, unknown>[]) =>
      rows.map((row) => ({
        ...row,
        id: Number(row.id),
        at: Number(row.at),
        price: row.price === null ? null : Number(row.price),
        count: row.count === null ? null : Number(row.count),
      }));
    expect(norm(binary.rows)).toEqual(norm(text.rows));
    const [one, two, three, five, six, seven] = norm(binary.rows);
    expect(one).toMatchObject({
      id: 1,
      at: Date.parse('2026-11-01T00:00:00Z'),
      plan: 'pro',
      price: 19.5,
      count: 3,
      active: true,
      note: 'say "hi"',
    });
    expect(one?.email_token).toMatch(/^[0-9a-f]{32}$/);
    expect(two).toMatchObject({
      email_token: null,
      at: Date.parse('2026-11-01T00:00:01.250Z'),
      price: 0,
      count: null,
      active: false,
      note: 'é',
    });
    expect(Object.is(two?.price, -0)).toBe(false);
    // Corrected by policy (coerce, default) on the general path, then sent in the same format.
    expect(three).toMatchObject({ price: 42, count: 0, active: null, note: null });
    expect(five).toMatchObject({ id: 5, price: 1000, count: -7, active: true });
    expect(six).toMatchObject({ price: 0.1, count: 9007199254740991 });
    expect(seven?.price).toBe(Number('123456789.123456789'));
  });

  it('a value the table type cannot hold fails the file with the column named, and loads nothing', async () => {
    // `count integer` still pairs with a binary int4, but row 6's count is past 2^31.
    const url = await pg.url('narrow');
    const narrow = ingestInto(
      url,
      'CREATE TABLE items (id bigint primary key, email_token varchar(64), at bigint not null, plan varchar(512) not null, price double precision, count integer, active boolean, note text, source_key varchar(512) not null)',
    );
    await expect(narrow).rejects.toThrow(/table items: column count \(int4\) cannot hold 9007199254740991/);
    const db = await openWarehouse(url);
    try {
      expect(await count(db, 'items')).toBe(0);
      expect(await count(db, 'ingest_ledger')).toBe(0);
    } finally {
      await db.destroy();
    }
  });
});
