import type { Knex } from 'knex';
import type { ColumnContract, Contract } from '../contracts/types.js';

/** The warehouse column a contract column is stored in (PII under its token column). */
export const storedName = (c: ColumnContract): string => c.store_as ?? c.name;

/**
 * Ingestion's own migrations, recorded in the warehouse's `driftwood_migrations` like the core ones,
 * so SQLite and PostgreSQL reach the same schema by the same code.
 */
const MIGRATIONS: { id: string; up: (db: Knex) => Promise<void> }[] = [
  {
    id: '0100_ingest_contracts',
    up: async (db) => {
      await db.schema.alterTable('ingest_ledger', (t) => {
        t.integer('rows_corrected').notNullable().defaultTo(0);
        t.integer('rows_quarantined').notNullable().defaultTo(0);
        t.integer('contract_version');
        t.string('extra_columns', 2000);
        t.bigInteger('started_at');
      });
    },
  },
  {
    // Rows merged into a later row of the same key within one file, counted instead of hidden.
    id: '0101_ingest_duplicate_keys',
    up: async (db) => {
      await db.schema.alterTable('ingest_ledger', (t) => {
        t.integer('rows_duplicate').notNullable().defaultTo(0);
      });
    },
  },
];

export async function migrateIngest(db: Knex): Promise<void> {
  const done = new Set((await db('driftwood_migrations').select('id')).map((r: { id: string }) => r.id));
  for (const m of MIGRATIONS) {
    if (done.has(m.id)) continue;
    await db.transaction(async (trx) => {
      await m.up(trx);
      await trx('driftwood_migrations').insert({ id: m.id, applied_at: Date.now() });
    });
  }
}

/**
 * Creates the table of every contract table the warehouse does not have yet, from the contract's
 * column types: a new dataset needs a contract and data, no code. Existing tables are left alone.
 */
export async function ensureContractTables(db: Knex, contract: Contract): Promise<void> {
  for (const table of contract.tables) {
    if (await db.schema.hasTable(table.name)) continue;
    await db.schema.createTable(table.name, (t) => {
      for (const c of table.columns) {
        const name = storedName(c);
        const col =
          c.type === 'string'
            ? t.string(name, c.role === 'pii' ? 64 : 512)
            : c.type === 'integer' || c.type === 'timestamp'
              ? t.bigInteger(name)
              : c.type === 'number'
                ? t.double(name)
                : t.boolean(name);
        if (c.name === table.key) col.primary();
        else if (c.nullable === false) col.notNullable();
      }
      t.string('source_key', 512).notNullable();
      t.index(['source_key']);
      for (const cols of table.indexes ?? [])
        t.index(cols.map((name) => storedName(table.columns.find((c) => c.name === name) as ColumnContract)));
    });
  }
}
