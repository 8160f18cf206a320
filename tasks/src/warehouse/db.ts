import { mkdirSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { DriftwoodError } from '../errors.js';
import type { ObjectStore } from '../lake/object-store.js';

/**
 * Where a feature build aggregates: in the warehouse itself (one statement on SQLite or PostgreSQL),
 * or in an embedded DuckDB that reads the events from their Parquet files in the lake. DuckDB's
 * build has no extension to read a SQLite file or PostgreSQL (those are downloads at run time).
 * Chosen by DRIFTWOOD_FEATURE_ENGINE (`readFeatureEngine` in config.ts).
 */
export type FeatureEngine = 'warehouse' | 'duckdb';

export type Warehouse = Knex;

/**
 * Opens the warehouse: a SQLite file (the embedded default, in WAL mode so readers do not block the
 * loader) or PostgreSQL. The schema is brought up to date before the handle is returned. The handle
 * carries the feature engine (`engineOf`), so every step that builds features from it uses the one
 * configured, and the lake the DuckDB engine reads Parquet from.
 */
export async function openWarehouse(
  url: string,
  options: { featureEngine?: FeatureEngine; lake?: ObjectStore } = {},
): Promise<Warehouse> {
  let db: Knex;
  if (url.startsWith('sqlite://')) {
    const file = url.slice('sqlite://'.length);
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    db = knexFactory({
      client: 'better-sqlite3',
      connection: { filename: file },
      useNullAsDefault: true,
      pool: {
        afterCreate: (
          conn: { pragma: (s: string) => void },
          done: (err: Error | null, conn: unknown) => void,
        ) => {
          conn.pragma('journal_mode = WAL');
          conn.pragma('busy_timeout = 10000');
          // The feature build scans millions of index entries: SQLite's 2 MB default page cache and
          // read() calls make it I/O-bound; a 256 MB cache and memory-mapped reads keep it in RAM.
          conn.pragma('cache_size = -262144');
          conn.pragma('mmap_size = 1073741824');
          conn.pragma('temp_store = MEMORY');
          done(null, conn);
        },
      },
    });
  } else {
    db = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
  }
  db.userParams = {
    featureEngine: options.featureEngine ?? 'warehouse',
    ...(options.lake ? { lake: options.lake } : {}),
  };
  try {
    await migrate(db);
  } catch (err) {
    await db.destroy();
    const msg = err instanceof Error ? err.message : String(err);
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `setting DRIFTWOOD_WAREHOUSE_URL: cannot open the warehouse (${msg})`,
      {},
      { cause: err },
    );
  }
  return db;
}

/**
 * Schema migrations, in order. Each is idempotent (hasTable checks) and recorded in
 * `driftwood_migrations`, so both backends reach the same schema by the same code.
 */
const MIGRATIONS: { id: string; up: (db: Knex) => Promise<void> }[] = [
  {
    // The project's own tables. A dataset's tables come from its contract (ingest/schema.ts:
    // ensureContractTables); warehouses made before that keep the tables this step once created.
    id: '0001_core',
    up: async (db) => {
      if (await db.schema.hasTable('ingest_ledger')) return;
      await db.schema.createTable('ingest_ledger', (t) => {
        t.string('object_key', 512).primary();
        t.string('dataset', 64).notNullable();
        t.string('etag', 128).notNullable();
        t.string('sha256', 64).notNullable();
        t.bigInteger('size').notNullable();
        t.string('status', 16).notNullable();
        t.integer('rows_read').notNullable();
        t.integer('rows_loaded').notNullable();
        t.string('reason', 2000);
        t.bigInteger('loaded_at').notNullable();
        t.index(['sha256']);
      });
    },
  },
  {
    // Once an index on a dataset table; contracts declare their indexes now (`indexes`), and
    // warehouses that ran this step keep the index it made. Kept so the recorded ids stay in step.
    id: '0002_events_feature_index',
    up: async () => {},
  },
];

async function migrate(db: Knex): Promise<void> {
  if (!(await db.schema.hasTable('driftwood_migrations'))) {
    try {
      await db.schema.createTable('driftwood_migrations', (t) => {
        t.string('id', 64).primary();
        t.bigInteger('applied_at').notNullable();
      });
    } catch (err) {
      // Another process created it first.
      if (!(await db.schema.hasTable('driftwood_migrations'))) throw err;
    }
  }
  const done = new Set((await db('driftwood_migrations').select('id')).map((r: { id: string }) => r.id));
  for (const m of MIGRATIONS) {
    if (done.has(m.id)) continue;
    await db.transaction(async (trx) => {
      await m.up(trx);
      await trx('driftwood_migrations').insert({ id: m.id, applied_at: Date.now() });
    });
  }
}
