import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type ObjectStore, openObjectStore, openWarehouse, type Warehouse } from '@driftwood/tasks';
import knexFactory from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { runCli, silentLog, tempHome } from '../support/env.js';

/**
 * Issue 20, problem 9: ingest merged 2 exact duplicate rows without a count or a reason
 * (`rowsLoaded 7043` for a table holding 7,041), and a file with only corrections got no reason
 * file. Problem 8: a killed ingest's partial copies of raw files stayed in the lake
 * (`.customers.csv.<pid>.tmp`), and the re-run did not remove them.
 */

const PII_KEY = 'traceable-key-0123456789abcdef';
const PG_DB = process.env.DRIFTWOOD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const opts = { dataset: 'churn', piiKey: PII_KEY, now: () => Date.parse('2026-11-05T00:00:00Z') };
const HEADER = 'customer_id,email,signup_at,plan,region,monthly_charges';
const row = (id: string, region = 'north', plan = 'basic') =>
  `${id},${id.toLowerCase()}@example.com,2026-10-01T00:00:00Z,${plan},${region},42.5`;
const DEAD_PID = 99_999_999;

const count = async (db: Warehouse, table: string) => Number((await db(table).count({ n: '*' }))[0]?.n);
const reasonOf = async (lake: ObjectStore, key: string) =>
  JSON.parse((await lake.get(`${key.replace(/^raw\//, 'quarantine/')}.reason.json`)).toString());

const pgAdmin = knexFactory({ client: 'pg', connection: PG_DB, pool: { min: 0, max: 1 } });
const schemas: string[] = [];
afterAll(async () => {
  for (const s of schemas) await pgAdmin.raw(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await pgAdmin.destroy();
});

const backends: [string, (home: string) => Promise<string>][] = [
  ['SQLite', async (home) => `sqlite://${path.join(home, 'warehouse.db')}`],
  [
    'PostgreSQL',
    async () => {
      const schema = `dw_trace_${Date.now().toString(36)}_${process.pid}_${schemas.length}`;
      await pgAdmin.raw(`CREATE SCHEMA ${schema}`);
      schemas.push(schema);
      return `${PG_DB}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    },
  ],
];

describe.each(backends)(
  'ingest on %s: duplicates and corrections are counted and traceable',
  (_name, url) => {
    it('counts duplicate keys per file, loads the last row of each, and names every one in the reason file', async () => {
      const home = tempHome('driftwood-dup-');
      const lake = openObjectStore(`file://${path.join(home, 'lake')}`);
      const db = await openWarehouse(await url(home));
      try {
        const key = 'raw/churn/dt=2026-11-01/hr=00/customers.csv';
        // Rows 2-6: five customers; row 7 repeats row 3 exactly, row 8 repeats row 5's key with a new plan.
        const lines = [
          HEADER,
          row('C1'),
          row('C2'),
          row('C3'),
          row('C4'),
          row('C5'),
          row('C2'),
          row('C4', 'north', 'premium'),
        ];
        await lake.put(key, `${lines.join('\n')}\n`);
        const r = await runIngest(opts, { lake, db, log: silentLog });
        expect(r).toMatchObject({ rowsRead: 7, rowsLoaded: 5, rowsDuplicate: 2, rowsRejected: 0 });
        expect(r.files[0]).toMatchObject({ rowsGood: 7, rowsDuplicate: 2, anomalies: { duplicate_key: 2 } });
        expect(await count(db, 'customers')).toBe(5);
        // Last row wins: C4 has the later plan.
        expect((await db('customers').where({ customer_id: 'C4' }).first('plan'))?.plan).toBe('premium');
        const ledger = await db('ingest_ledger').where({ object_key: key }).first();
        expect(Number(ledger.rows_loaded)).toBe(5);
        expect(Number(ledger.rows_duplicate)).toBe(2);
        expect(ledger.reason).toMatch(/2 duplicate key\(s\) merged/);
        const reason = await reasonOf(lake, key);
        expect(reason.rows).toMatchObject({ read: 7, duplicate_key: 2, loaded: 5 });
        expect(reason.duplicate_keys.rows).toEqual([
          { row: 7, key: 'C2', firstRow: 3 },
          { row: 8, key: 'C4', firstRow: 5 },
        ]);
      } finally {
        await db.destroy();
      }
    });

    it('writes a reason file for a file with only corrections, naming every corrected row', async () => {
      const home = tempHome('driftwood-corr-');
      const lake = openObjectStore(`file://${path.join(home, 'lake')}`);
      const db = await openWarehouse(await url(home));
      try {
        const key = 'raw/churn/dt=2026-11-01/hr=01/customers.csv';
        // Rows 3, 5 and 6 have a region the contract does not allow: it defaults them to north.
        const lines = [
          HEADER,
          row('D1'),
          row('D2', 'mars'),
          row('D3'),
          row('D4', 'moon'),
          row('D5', 'pluto'),
        ];
        await lake.put(key, `${lines.join('\n')}\n`);
        const r = await runIngest(opts, { lake, db, log: silentLog });
        expect(r).toMatchObject({ rowsRead: 5, rowsLoaded: 5, rowsCorrected: 3, rowsRejected: 0 });
        const reason = await reasonOf(lake, key);
        expect(reason.rows).toMatchObject({ read: 5, corrected: 3, quarantined: 0 });
        expect(reason.rejected_rows).toBeUndefined();
        const rows = [...new Set(reason.problems.map((p: { row: number }) => p.row))].sort();
        expect(rows).toEqual([3, 5, 6]);
        expect(reason.problems.every((p: { column: string }) => p.column === 'region')).toBe(true);
        const ledger = await db('ingest_ledger').where({ object_key: key }).first();
        expect(ledger.reason).toBe('3 row(s) corrected');
      } finally {
        await db.destroy();
      }
    });
  },
);

describe('ingest leaves no partial file in the lake and removes what a killed run left (built CLI)', () => {
  it('writes through a folder outside the lake; the re-run removes dead runs’ leftovers and keeps a live one’s', async () => {
    const home = tempHome('driftwood-leftovers-');
    const env = { DRIFTWOOD_HOME: home, DRIFTWOOD_PII_KEY: PII_KEY };
    const sim = await runCli(
      ['simulate', '--start', '2026-11-01T00:00Z', '--hours', '4', '--seed', '3', '--customers', '30'],
      env,
    );
    expect(sim.code, sim.stderr).toBe(0);
    // What a run killed while copying a raw file to quarantine left: in the lake (earlier versions
    // wrote there), in the temporary folder beside it, and a spill of rejected rows.
    const q = path.join(home, 'lake', 'quarantine', 'churn', 'dt=2026-11-01', 'hr=00');
    mkdirSync(q, { recursive: true });
    const partial = 'customer_id,email\nC000001,c000001@example.com\n';
    const dead = [
      path.join(q, `.customers.csv.${DEAD_PID}.tmp`),
      path.join(home, 'tmp', 'lake', `customers.csv.${DEAD_PID}.0badc0de.tmp`),
      path.join(home, 'tmp', 'ingest', `driftwood-rejected.${DEAD_PID}.0badc0de.tmp`),
    ];
    // A file of a writer that still runs (this test process) is not touched.
    const live = path.join(home, 'tmp', 'lake', `customers.csv.${process.pid}.0badc0de.tmp`);
    for (const f of [...dead, live]) {
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(f, partial);
    }
    const r = await runCli(['ingest', '--until', '2026-11-01T04:00Z'], env);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.leftoversRemoved).toEqual({ files: 3, bytes: 3 * partial.length });
    for (const f of dead) expect(existsSync(f), f).toBe(false);
    expect(existsSync(live)).toBe(true);
    // No temporary file anywhere in the lake after a run.
    const hidden = readdirSync(path.join(home, 'lake'), { recursive: true }).filter((f) =>
      String(f).endsWith('.tmp'),
    );
    expect(hidden).toEqual([]);
  });
});
