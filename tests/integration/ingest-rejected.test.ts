import path from 'node:path';
import { type ObjectStore, openObjectStore, openWarehouse, type Warehouse } from '@driftwood/tasks';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { tokenise } from '../../tasks/src/pii.js';
import { silentLog, tempHome } from '../support/env.js';

const PII_KEY = 'test-key-0123456789abcdef';
const PG_DB = process.env.DRIFTWOOD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `dwr_${Date.now().toString(36)}_${process.pid}`;
const opts = { dataset: 'churn', piiKey: PII_KEY, now: () => Date.parse('2026-11-05T00:00:00Z') };
const HEAD = 'customer_id,email,signup_at,plan,region,monthly_charges';
const customer = (id: string, charges: number | string = 19.5) =>
  `${id},${id.toLowerCase()}@example.com,2026-01-01T00:00:00Z,basic,north,${charges}`;

const admin = knexFactory({ client: 'pg', connection: PG_DB, pool: { min: 0, max: 1 } });
const backends = [
  { name: 'SQLite', url: async (home: string) => `sqlite://${path.join(home, 'w.db')}` },
  {
    name: 'PostgreSQL',
    url: async () => {
      await admin.raw(`CREATE SCHEMA ${RUN}`);
      return `${PG_DB}?options=${encodeURIComponent(`-c search_path=${RUN}`)}`;
    },
  },
];
afterAll(async () => {
  await admin.raw(`DROP SCHEMA IF EXISTS ${RUN} CASCADE`);
  await admin.destroy();
});

const count = async (db: Warehouse, where: Record<string, unknown> = {}) =>
  Number((await db('customers').where(where).count({ n: '*' }))[0]?.n);

describe.each(backends)('ingest on $name', (backend) => {
  let lake: ObjectStore;
  let db: Warehouse;
  beforeAll(async () => {
    const home = tempHome('driftwood-rejected-');
    lake = openObjectStore(`file://${path.join(home, 'lake')}`);
    db = await openWarehouse(await backend.url(home));
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('copies every rejected row into quarantine, next to the reason file, with PII tokenised', async () => {
    const key = 'raw/churn/dt=2026-11-04/hr=01/customers.csv';
    await lake.put(
      key,
      [
        HEAD,
        customer('R000001'), // good
        'R000002, r2@example.com ,2026-01-01T00:00:00Z,basic,north,19', // padded email: coerced
        'R000003,r3@example.com,2026-01-01T00:00:00Z,gold,north,19', // plan unknown: dropped
        'R000004,r4@example.com,yesterday,basic,north,19', // not a time: dropped
        'R000005,r5@example.com,2026-01-01T00:00:00Z', // truncated line: malformed
        'R000006,"r6@example.com,x",2026-01-01T00:00:00Z,basic,north,19,extra', // one field too many
      ].join('\n'),
    );
    const r = await runIngest(opts, { lake, db, log: silentLog });
    const file = r.files.find((f) => f.key === key);
    expect(file).toMatchObject({ status: 'loaded', rowsRead: 6, rowsQuarantined: 4 });
    const base = key.replace(/^raw\//, 'quarantine/');
    const reason = JSON.parse((await lake.get(`${base}.reason.json`)).toString());
    expect(reason.rejected_rows).toBe(`${base}.rejected.jsonl`);
    const rejected = (await lake.get(`${base}.rejected.jsonl`))
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // One line per rejected row, in file order, and as many as the accounting says.
    expect(rejected.map((x) => x.row)).toEqual([4, 5, 6, 7]);
    expect(rejected).toHaveLength(file?.rowsQuarantined ?? -1);
    expect(rejected[0]).toEqual({
      row: 4,
      problems: [
        {
          row: 4,
          column: 'plan',
          value: 'gold',
          rule: 'allowed',
          action: 'dropped_row',
          detail: 'not one of basic, standard, premium',
        },
      ],
      values: {
        customer_id: 'R000003',
        email: tokenise('r3@example.com', PII_KEY),
        signup_at: '2026-01-01T00:00:00Z',
        plan: 'gold',
        region: 'north',
        monthly_charges: '19',
      },
    });
    expect(rejected[1]?.problems[0]).toMatchObject({ column: 'signup_at', value: 'yesterday', rule: 'type' });
    // A record that does not line up with the header: every field a PII value could have moved to is a token.
    expect(rejected[2]).toMatchObject({
      row: 6,
      problems: [{ rule: 'malformed_row', detail: 'expected 6 fields, got 3' }],
    });
    expect(rejected[2]?.fields).toEqual(
      ['R000005', 'r5@example.com', '2026-01-01T00:00:00Z'].map((f) => tokenise(f, PII_KEY)),
    );
    // Here email is the second column, so only a field before it could be kept: none is.
    expect(rejected[3]?.fields).toHaveLength(7);
    expect(rejected[3]?.fields[1]).toBe(tokenise('r6@example.com,x', PII_KEY));
    // No raw email anywhere in quarantine: not in the rows, not in the reason file's problems.
    for (const k of [`${base}.rejected.jsonl`, `${base}.reason.json`])
      expect((await lake.get(k)).toString(), k).not.toMatch(/@example\.(com|org)/);
    const coerced = reason.problems.find((p: { column: string }) => p.column === 'email');
    expect(coerced).toMatchObject({
      row: 3,
      action: 'corrected',
      value: tokenise('r2@example.com', PII_KEY),
    });
    // The warehouse holds the same token for the corrected row.
    expect((await db('customers').where({ customer_id: 'R000002' }).first()).email_token).toBe(
      tokenise('r2@example.com', PII_KEY),
    );
  });

  it('streams a file of many batches, and a row repeated from an earlier file replaces it (last wins)', async () => {
    const n = 12_000;
    const first = 'raw/churn/dt=2026-11-04/hr=02/customers.csv';
    const ids = Array.from({ length: n }, (_, i) => `S${String(i).padStart(6, '0')}`);
    await lake.put(first, `${HEAD}\n${ids.map((id) => customer(id)).join('\n')}\n`);
    const a = await runIngest({ ...opts, batchRows: 500 }, { lake, db, log: silentLog });
    expect(a.files.find((f) => f.key === first)).toMatchObject({
      status: 'loaded',
      rowsRead: n,
      rowsGood: n,
    });
    expect(await count(db, { source_key: first })).toBe(n);

    // An hour later the same customers again, with new charges, one of them twice: upserts, not errors.
    const second = 'raw/churn/dt=2026-11-04/hr=03/customers.csv';
    const again = ids.slice(0, 3000).map((id) => customer(id, 42));
    again.push(customer(ids[0] as string, 43));
    await lake.put(second, `${HEAD}\n${again.join('\n')}\n`);
    const b = await runIngest({ ...opts, batchRows: 500 }, { lake, db, log: silentLog });
    expect(b.files.find((f) => f.key === second)).toMatchObject({
      status: 'loaded',
      rowsRead: 3001,
      rowsGood: 3001,
      rowsDuplicate: 1,
    });
    expect(await count(db, { source_key: second })).toBe(3000);
    expect(await count(db, { source_key: first })).toBe(n - 3000);
    const charges = async (id: string) =>
      Number((await db('customers').where({ customer_id: id }).first()).monthly_charges);
    expect(await charges(ids[0] as string)).toBe(43);
    expect(await charges(ids[1] as string)).toBe(42);
    expect(await charges(ids[5000] as string)).toBe(19.5);
    // What the table holds from the file: the repeated key is counted as a duplicate, not loaded twice.
    const ledger = await db('ingest_ledger').where({ object_key: second }).first();
    expect(Number(ledger.rows_loaded)).toBe(3000);
    expect(Number(ledger.rows_duplicate)).toBe(1);
  });

  it('a file rejected after many batches were sent loads none of its rows, and the next file loads', async () => {
    const bad = 'raw/churn/dt=2026-11-04/hr=04/customers.csv';
    const rows = Array.from({ length: 8000 }, (_, i) => customer(`Q${String(i).padStart(6, '0')}`));
    // customer_id is required with policy quarantine_file: the whole file goes, though 7000 rows went ahead.
    rows.splice(7000, 0, ',q@example.com,2026-01-01T00:00:00Z,basic,north,19');
    await lake.put(bad, `${HEAD}\n${rows.join('\n')}\n`);
    const good = 'raw/churn/dt=2026-11-04/hr=05/customers.csv';
    await lake.put(good, `${HEAD}\n${customer('P000001')}\n`);
    const r = await runIngest({ ...opts, batchRows: 500 }, { lake, db, log: silentLog });
    expect(r.files.find((f) => f.key === bad)).toMatchObject({
      status: 'quarantined',
      rowsQuarantined: 7001,
    });
    expect(await count(db, { source_key: bad })).toBe(0);
    expect(r.files.find((f) => f.key === good)).toMatchObject({ status: 'loaded', rowsGood: 1 });
    expect(await count(db, { customer_id: 'P000001' })).toBe(1);
    const reason = (await lake.get(`${bad.replace(/^raw\//, 'quarantine/')}.reason.json`)).toString();
    expect(reason).toMatch(/row 7002: column customer_id/);
  });
});

describe('rejected rows of a big file', () => {
  it('go through a temporary file past the memory bound, and all reach the lake', async () => {
    const { RejectedRows } = await import('../../tasks/src/ingest/rejected.js');
    const { readdir } = await import('node:fs/promises');
    const table = {
      name: 'customers',
      files: ['customers.csv'],
      key: 'customer_id',
      columns: [
        { name: 'customer_id', type: 'string' as const, role: 'id' as const },
        { name: 'email', type: 'string' as const, role: 'pii' as const, store_as: 'email_token' },
      ],
    };
    const spillDir = path.join(tempHome('driftwood-spill-'), 'tmp', 'ingest');
    const rows = new RejectedRows(table, PII_KEY, spillDir);
    const n = 60_000; // ~12 MB of JSON lines: past the 8 MB kept in memory
    const problem = {
      row: 0,
      column: 'x',
      value: 'y',
      rule: 'allowed' as const,
      action: 'dropped_row' as const,
    };
    for (let i = 0; i < n; i++)
      rows.add(i + 2, { customer_id: `C${i}`, email: `c${i}@example.com`, note: 'x'.repeat(100) }, [problem]);
    const spills = async () =>
      (await readdir(spillDir)).filter((f) => f.startsWith(`driftwood-rejected.${process.pid}.`)).length;
    expect(await spills()).toBeGreaterThan(0);
    const lake = openObjectStore(`file://${path.join(tempHome('driftwood-rejected-big-'), 'lake')}`);
    await rows.save(lake, 'quarantine/churn/big.rejected.jsonl');
    const text = (await lake.get('quarantine/churn/big.rejected.jsonl')).toString();
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(n);
    expect(JSON.parse(lines[n - 1] as string)).toMatchObject({
      row: n + 1,
      values: { customer_id: `C${n - 1}` },
    });
    expect(text).not.toContain('@example.com');
    expect(await spills()).toBe(0);
  });
});
