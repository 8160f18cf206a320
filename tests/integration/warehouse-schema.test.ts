import path from 'node:path';
import knexFactory from 'knex';
import { afterAll, describe, expect, it } from 'vitest';
import { loadContract } from '../../tasks/src/contracts/index.js';
import { ensureContractTables } from '../../tasks/src/ingest/schema.js';
import { openWarehouse, type Warehouse } from '../../tasks/src/warehouse/db.js';
import { tempHome } from '../support/env.js';

const home = tempHome('driftwood-warehouse-');
const opened: Warehouse[] = [];
afterAll(async () => Promise.all(opened.map((db) => db.destroy())));

async function open(name: string): Promise<Warehouse> {
  const db = await openWarehouse(`sqlite://${path.join(home, name)}`);
  opened.push(db);
  return db;
}

/** The column lists of a SQLite table's indexes. */
async function indexes(db: Warehouse, table: string): Promise<string[][]> {
  const list = (await db.raw(`PRAGMA index_list(${table})`)) as { name: string }[];
  return Promise.all(
    list.map(async (i) =>
      ((await db.raw(`PRAGMA index_info(${i.name})`)) as { name: string }[]).map((c) => c.name),
    ),
  );
}

describe('the warehouse schema', () => {
  it('a new warehouse holds only the project’s tables; a dataset’s come from its contract, with its indexes', async () => {
    const db = await open('new.db');
    expect(await db.schema.hasTable('ingest_ledger')).toBe(true);
    for (const table of ['customers', 'events', 'labels', 'candles'])
      expect(await db.schema.hasTable(table)).toBe(false);
    const churn = await loadContract('churn');
    await ensureContractTables(db, churn);
    for (const t of churn.tables) expect(await db.schema.hasTable(t.name)).toBe(true);
    const made = await indexes(db, 'events');
    for (const declared of churn.tables.find((t) => t.name === 'events')?.indexes ?? [])
      expect(made).toContainEqual(declared);
    expect(await db.schema.hasTable('candles')).toBe(false);
  });

  it('a warehouse made before keeps its dataset tables and rows as they are', async () => {
    // The tables the first schema step once made, with a row and the step recorded as done.
    const file = path.join(home, 'old.db');
    const old = knexFactory({
      client: 'better-sqlite3',
      connection: { filename: file },
      useNullAsDefault: true,
    });
    await old.schema.createTable('driftwood_migrations', (t) => {
      t.string('id', 64).primary();
      t.bigInteger('applied_at').notNullable();
    });
    await old('driftwood_migrations').insert([
      { id: '0001_core', applied_at: 1 },
      { id: '0002_events_feature_index', applied_at: 2 },
    ]);
    await old.schema.createTable('ingest_ledger', (t) => t.string('object_key', 512).primary());
    await old.schema.createTable('customers', (t) => {
      t.string('customer_id', 32).primary();
      t.string('plan', 32).notNullable();
      t.string('legacy_note', 32);
    });
    await old('customers').insert({ customer_id: 'C-1', plan: 'basic', legacy_note: 'kept' });
    await old.destroy();

    const db = await open('old.db');
    await ensureContractTables(db, await loadContract('churn'));
    expect(await db('customers').select()).toEqual([
      { customer_id: 'C-1', plan: 'basic', legacy_note: 'kept' },
    ]);
    expect(await db.schema.hasTable('events')).toBe(true);
  });
});
