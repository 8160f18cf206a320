import {
  type DuckDBConnection,
  type DuckDBDataChunk,
  DuckDBDoubleVector,
  DuckDBInstance,
} from '@duckdb/node-api';
import type { Warehouse } from './db.js';
import { lap, now, type PhaseTime, type Timings } from './timings.js';

/** Where a build on DuckDB spent its time. */
export interface DuckDBTimings extends Timings {
  /** The aggregation statement over the Parquet files, to its materialised result. */
  aggregate: PhaseTime;
  /** The result's chunks read back into Node. */
  readBack: PhaseTime;
}

/** An in-memory DuckDB for one build: one aggregation over Parquet files out as columns. */
export class DuckDBSession {
  readonly timings: DuckDBTimings = {
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

  /** Runs a statement whose result is not needed (a `CREATE`). */
  async run(sql: string): Promise<void> {
    await this.conn.run(sql);
  }

  /**
   * Runs `sql` and reads its result straight into one array per column: a Float64Array for every
   * column named in `numeric` (the statement must never give NULL there: coalesce it to a marker),
   * a string array for the others. No row is built on the way; values are copied chunk by chunk.
   */
  async table(
    sql: string,
    numeric: ReadonlySet<number>,
  ): Promise<{ rows: number; columns: (Float64Array | string[])[] }> {
    let t0 = now();
    const result = await this.conn.run(sql);
    lap(this.timings, 'aggregate', t0);
    t0 = now();
    const chunks: DuckDBDataChunk[] = [];
    let rows = 0;
    for (
      let chunk = await result.fetchChunk();
      chunk && chunk.rowCount > 0;
      chunk = await result.fetchChunk()
    ) {
      chunks.push(chunk);
      rows += chunk.rowCount;
    }
    const columns = Array.from({ length: result.columnCount }, (_, k) =>
      numeric.has(k) ? new Float64Array(rows) : new Array<string>(rows),
    );
    let at = 0;
    for (const chunk of chunks) {
      const n = chunk.rowCount;
      columns.forEach((column, k) => {
        const vector = chunk.getColumnVector(k);
        if (column instanceof Float64Array) {
          // A DOUBLE vector without NULLs is its items: copied in one call, not read one at a time.
          // The node API keeps that array private (its public path is getItem per value), so it is
          // checked to be there; a version without it takes the per-value path.
          const items =
            vector instanceof DuckDBDoubleVector
              ? (vector as unknown as { items?: unknown }).items
              : undefined;
          if (items instanceof Float64Array && items.length >= n) column.set(items.subarray(0, n), at);
          else for (let i = 0; i < n; i++) column[at + i] = vector.getItem(i) as number;
        } else {
          for (let i = 0; i < n; i++) column[at + i] = String(vector.getItem(i));
        }
      });
      at += n;
    }
    lap(this.timings, 'readBack', t0);
    return { rows, columns };
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
  bindings: readonly (number | string)[],
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
