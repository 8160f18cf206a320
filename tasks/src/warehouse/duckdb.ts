import {
  DOUBLE,
  type DuckDBAppender,
  type DuckDBConnection,
  DuckDBDataChunk,
  DuckDBInstance,
  type DuckDBType,
  INTEGER,
  UTINYINT,
} from '@duckdb/node-api';
import type { Warehouse } from './db.js';
import { lap, now, type PhaseTime, type Timings } from './timings.js';

/**
 * Numbers only cross into DuckDB: ids become positions and categories small codes on the Node side
 * first. A number lands in a typed array that is copied into the vector in one call; a string costs
 * a native call of its own, which is what made copying text columns slower than SQLite's whole build.
 */
export type NumericType = 'INTEGER' | 'UTINYINT' | 'DOUBLE';

const DUCK_TYPES: Record<NumericType, DuckDBType> = { INTEGER, UTINYINT, DOUBLE };
// DuckDB's vector size: a chunk appended at once holds at most this many rows.
const CHUNK_ROWS = 2048;

/** Where a build on DuckDB spent its time. */
export interface DuckDBTimings extends Timings {
  /** Appending rows into DuckDB's column chunks. */
  append: PhaseTime;
  /** The aggregation statement, to its materialised result. */
  aggregate: PhaseTime;
  /** The result's chunks read back into Node. */
  readBack: PhaseTime;
}

/** Rows appended into a DuckDB table a chunk at a time: `push` one row, `close` when done. */
export class NumericTable {
  private readonly columns: (Float64Array | Int32Array | Uint8Array)[];
  private readonly nulls: Uint8Array[];
  private count = 0;

  constructor(
    private readonly appender: DuckDBAppender,
    private readonly types: readonly NumericType[],
    private readonly timings: DuckDBTimings,
  ) {
    this.columns = types.map((t) =>
      t === 'DOUBLE'
        ? new Float64Array(CHUNK_ROWS)
        : t === 'INTEGER'
          ? new Int32Array(CHUNK_ROWS)
          : new Uint8Array(CHUNK_ROWS),
    );
    this.nulls = types.map(() => new Uint8Array(CHUNK_ROWS));
  }

  /** One row, a value (or null) per column in the table's order. */
  push(row: readonly (number | null)[]): void {
    const at = this.count;
    for (let k = 0; k < row.length; k++) {
      const v = row[k];
      if (v === null || v === undefined) (this.nulls[k] as Uint8Array)[at] = 1;
      else (this.columns[k] as Float64Array)[at] = v;
    }
    if (++this.count === CHUNK_ROWS) this.flush();
  }

  close(): void {
    this.flush();
    this.appender.closeSync();
  }

  private flush(): void {
    const n = this.count;
    if (n === 0) return;
    const t0 = now();
    const chunk = DuckDBDataChunk.create(
      this.types.map((t) => DUCK_TYPES[t]),
      n,
    );
    for (let k = 0; k < this.types.length; k++) {
      const vector = chunk.getColumnVector(k);
      const values = this.columns[k] as Float64Array;
      const nulls = this.nulls[k] as Uint8Array;
      for (let i = 0; i < n; i++) vector.setItem(i, nulls[i] ? null : (values[i] as number));
      vector.flush();
      nulls.fill(0, 0, n);
    }
    this.appender.appendDataChunk(chunk);
    this.count = 0;
    lap(this.timings, 'append', t0);
  }
}

/** An in-memory DuckDB for one build: tables of numbers in, one aggregation out as columns. */
export class DuckDBSession {
  readonly timings: DuckDBTimings = {
    append: { wall: 0, cpu: 0 },
    aggregate: { wall: 0, cpu: 0 },
    readBack: { wall: 0, cpu: 0 },
  };

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
  ) {}

  /** DuckDB's own default for threads is one per core; it aggregates in parallel across them. */
  static async open(): Promise<DuckDBSession> {
    const instance = await DuckDBInstance.create(':memory:');
    return new DuckDBSession(instance, await instance.connect());
  }

  async table(name: string, columns: readonly (readonly [string, NumericType])[]): Promise<NumericTable> {
    await this.conn.run(`CREATE TABLE ${name} (${columns.map(([c, t]) => `${c} ${t}`).join(', ')})`);
    return new NumericTable(
      await this.conn.createAppender(name),
      columns.map(([, t]) => t),
      this.timings,
    );
  }

  /** Runs `sql` and returns its result column by column (every column must be numeric). */
  async columns(sql: string): Promise<(number | null)[][]> {
    let t0 = now();
    const result = await this.conn.run(sql);
    lap(this.timings, 'aggregate', t0);
    t0 = now();
    const out: (number | null)[][] = Array.from({ length: result.columnCount }, () => []);
    for (
      let chunk = await result.fetchChunk();
      chunk && chunk.rowCount > 0;
      chunk = await result.fetchChunk()
    ) {
      const n = chunk.rowCount;
      for (let k = 0; k < out.length; k++) {
        const vector = chunk.getColumnVector(k);
        const column = out[k] as (number | null)[];
        for (let i = 0; i < n; i++) column.push(vector.getItem(i) as number | null);
      }
    }
    lap(this.timings, 'readBack', t0);
    return out;
  }

  close(): void {
    this.conn.closeSync();
    this.instance.closeSync();
  }
}

/**
 * Hands each row of a warehouse SELECT to `take` as an array: streamed from SQLite (raw mode, one
 * array per row instead of an object), fetched at once from PostgreSQL.
 */
export async function eachRow(
  db: Warehouse,
  select: string,
  bindings: readonly number[],
  take: (row: unknown[]) => void,
): Promise<void> {
  if (db.client.config.client === 'better-sqlite3') {
    const conn = (await db.client.acquireConnection()) as import('better-sqlite3').Database;
    try {
      const rows = conn
        .prepare(select)
        .raw(true)
        .iterate(...bindings) as IterableIterator<unknown[]>;
      for (const row of rows) take(row);
    } finally {
      await db.client.releaseConnection(conn);
    }
    return;
  }
  const result = await db.raw(select, [...bindings]).options({ rowMode: 'array' });
  for (const row of result.rows as unknown[][]) take(row);
}
