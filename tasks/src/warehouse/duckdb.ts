import {
  DOUBLE,
  type DuckDBConnection,
  DuckDBDataChunk,
  DuckDBInstance,
  type DuckDBType,
  VARCHAR,
} from '@duckdb/node-api';
import type { Warehouse } from './db.js';

/** A column copied into DuckDB: numbers travel as DOUBLE (epoch milliseconds are exact there), text as VARCHAR. */
export interface CopiedColumn {
  name: string;
  type: 'double' | 'text';
}

/** One table to copy: the warehouse SELECT that yields its rows, columns in that order. */
export interface CopiedTable {
  name: string;
  columns: readonly CopiedColumn[];
  select: string;
  bindings: readonly number[];
}

// DuckDB's vector size: a chunk appended at once holds at most this many rows.
const CHUNK_ROWS = 2048;

/**
 * Copies `tables` from the warehouse into an in-memory DuckDB, column chunk by column chunk, runs
 * `sql` there and returns its rows as arrays (counts as bigint, numbers, strings, null).
 */
export async function aggregateInDuckDB(
  db: Warehouse,
  tables: readonly CopiedTable[],
  sql: string,
  bindings: readonly number[],
): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    for (const table of tables) await copyTable(db, conn, table);
    const reader = await conn.runAndReadAll(sql, [...bindings]);
    return reader.getRows() as unknown[][];
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

async function copyTable(db: Warehouse, conn: DuckDBConnection, table: CopiedTable): Promise<void> {
  const types: DuckDBType[] = table.columns.map((c) => (c.type === 'double' ? DOUBLE : VARCHAR));
  await conn.run(
    `CREATE TABLE ${table.name} (${table.columns.map((c) => `${c.name} ${c.type === 'double' ? 'DOUBLE' : 'VARCHAR'}`).join(', ')})`,
  );
  const appender = await conn.createAppender(table.name);
  const width = table.columns.length;
  const double = table.columns.map((c) => c.type === 'double');
  let columns: (number | string | null)[][] = Array.from({ length: width }, () => []);
  const flush = () => {
    const count = columns[0]?.length ?? 0;
    if (count === 0) return;
    const chunk = DuckDBDataChunk.create(types, count);
    chunk.setColumns(columns);
    appender.appendDataChunk(chunk);
    columns = Array.from({ length: width }, () => []);
  };
  await eachRow(db, table, (row) => {
    for (let k = 0; k < width; k++) {
      const v = row[k];
      // PostgreSQL hands bigint and numeric columns over as strings.
      (columns[k] as (number | string | null)[]).push(
        v === null || v === undefined ? null : double[k] ? Number(v) : String(v),
      );
    }
    if ((columns[0] as unknown[]).length === CHUNK_ROWS) flush();
  });
  flush();
  appender.closeSync();
}

/** Hands each row of a table's SELECT to `take` as an array: streamed from SQLite, fetched at once from PostgreSQL. */
async function eachRow(db: Warehouse, table: CopiedTable, take: (row: unknown[]) => void): Promise<void> {
  if (db.client.config.client === 'better-sqlite3') {
    const conn = (await db.client.acquireConnection()) as import('better-sqlite3').Database;
    try {
      const rows = conn
        .prepare(table.select)
        .raw(true)
        .iterate(...table.bindings) as IterableIterator<unknown[]>;
      for (const row of rows) take(row);
    } finally {
      await db.client.releaseConnection(conn);
    }
    return;
  }
  const result = await db.raw(table.select, [...table.bindings]).options({ rowMode: 'array' });
  for (const row of result.rows as unknown[][]) take(row);
}
