import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ColumnContract, Contract, TableContract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import { storedName } from '../ingest/schema.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Warehouse } from './db.js';

/**
 * A contract table's rows in the lake as Parquet, one file per source object, so DuckDB reads them
 * itself (`read_parquet`) instead of having them copied out of the warehouse through Node: its
 * builds have no scanner for SQLite or PostgreSQL (those extensions download at run time).
 *
 * The warehouse stays the truth. A file holds exactly the rows the warehouse holds for its source
 * (`source_key`), with the stored columns (PII under its token column, as stored), and its name
 * records the ingest ledger's sha256 of the source and its row count:
 * `columnar/<dataset>/<table>/<path under raw/<dataset>/>.<sha256[0:16] | none>.<rows>.parquet`.
 * `syncColumnar` rewrites a file whenever its source changed (a reloaded object, rows another
 * object took over by key, rows erased), so re-running ingest never duplicates a row.
 */
export const columnarPrefix = (dataset: string, table: string): string => `columnar/${dataset}/${table}/`;

const FILE_NAME = /^(.*)\.([0-9a-f]{16}|none)\.(\d+)\.parquet$/;

/** The lake key of a source's Parquet file. Keys of other origins than the raw folder are escaped. */
export function columnarKey(
  dataset: string,
  table: string,
  source: string,
  stamp: string,
  rows: number,
): string {
  const raw = `raw/${dataset}/`;
  const rest = source.startsWith(raw) ? source.slice(raw.length) : `other/${encodeURIComponent(source)}`;
  return `${columnarPrefix(dataset, table)}${rest}.${stamp}.${rows}.parquet`;
}

/** The source, ledger stamp and row count a Parquet file's key records; undefined for other keys. */
export function parseColumnarKey(
  dataset: string,
  table: string,
  key: string,
): { source: string; stamp: string; rows: number } | undefined {
  const prefix = columnarPrefix(dataset, table);
  if (!key.startsWith(prefix)) return undefined;
  const m = FILE_NAME.exec(key.slice(prefix.length));
  if (!m) return undefined;
  const rest = m[1] as string;
  const source = rest.startsWith('other/')
    ? decodeURIComponent(rest.slice('other/'.length))
    : `raw/${dataset}/${rest}`;
  return { source, stamp: m[2] as string, rows: Number(m[3]) };
}

export interface MirrorFile {
  key: string;
  stamp: string;
  rows: number;
}

export interface ColumnarPlan {
  /** Sources whose file is missing or out of date, to export from the warehouse. */
  write: string[];
  /** Files of sources the warehouse no longer holds, or superseded by a new file of their source. */
  remove: string[];
}

/**
 * Decides which sources to export and which files to remove, from the warehouse's row count per
 * source, the ledger's stamp per source and the files in the lake. Pure.
 */
export function planColumnar(
  counts: ReadonlyMap<string, number>,
  stamps: ReadonlyMap<string, string>,
  files: ReadonlyMap<string, MirrorFile[]>,
): ColumnarPlan {
  const write: string[] = [];
  const remove: string[] = [];
  for (const [source, rows] of counts) {
    const have = files.get(source) ?? [];
    const stamp = stamps.get(source) ?? 'none';
    const current = have.length === 1 && have[0]?.stamp === stamp && have[0].rows === rows;
    if (!current) {
      write.push(source);
      remove.push(...have.map((f) => f.key));
    }
  }
  for (const [source, have] of files) if (!counts.has(source)) remove.push(...have.map((f) => f.key));
  return { write, remove };
}

export interface ColumnarSync {
  /** Sources exported in this call. */
  written: number;
  /** Files removed in this call. */
  removed: number;
  /** Rows of the table, all in the lake's files after the call. */
  rows: number;
  /** Whether the per-source reconciliation ran (the quick check found the files out of step). */
  reconciled: boolean;
}

/**
 * Brings a table's Parquet files in the lake in step with the warehouse. `changed` names sources
 * known to have changed (ingest passes the objects it just loaded): they are exported first. Then a
 * quick check (every file's stamp against the ledger, the files' rows against the table's count)
 * settles whether anything else moved; only then are the rows counted per source and every source
 * out of step exported again. Files of the same source with an older stamp are removed after the new
 * one is written, so a reader never sees a source missing.
 */
export async function syncColumnar(
  db: Warehouse,
  lake: ObjectStore,
  contract: Contract,
  tableName: string,
  changed: readonly string[] = [],
): Promise<ColumnarSync> {
  const table = contract.tables.find((t) => t.name === tableName);
  if (!table)
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `contract '${contract.dataset}' has no table '${tableName}' to keep in the lake as Parquet`,
    );
  const dataset = contract.dataset;
  const result: ColumnarSync = { written: 0, removed: 0, rows: 0, reconciled: false };
  const stamps = new Map<string, string>(
    (
      (await db('ingest_ledger').where({ dataset, status: 'loaded' }).select('object_key', 'sha256')) as {
        object_key: string;
        sha256: string;
      }[]
    ).map((r) => [r.object_key, r.sha256.slice(0, 16)]),
  );
  const exporter = new ParquetExporter(db, lake, dataset, table);
  try {
    if (changed.length > 0) {
      const counts = await countBySource(db, table.name, changed);
      const files = await listFiles(lake, dataset, table.name);
      const only = new Map([...files].filter(([source]) => changed.includes(source)));
      for (const source of changed) if (!counts.has(source)) counts.set(source, 0);
      const plan = planColumnar(new Map([...counts].filter(([, n]) => n > 0)), stamps, only);
      await apply(plan, counts, stamps, exporter, lake, result);
    }
    const files = await listFiles(lake, dataset, table.name);
    const total = Number(((await db(table.name).count({ n: '*' })) as { n: number | string }[])[0]?.n ?? 0);
    let mirrored = 0;
    let inStep = true;
    for (const [source, have] of files) {
      for (const f of have) mirrored += f.rows;
      if (have.length !== 1 || have[0]?.stamp !== (stamps.get(source) ?? 'none')) inStep = false;
    }
    if (!inStep || mirrored !== total) {
      result.reconciled = true;
      const counts = await countBySource(db, table.name);
      await apply(planColumnar(counts, stamps, files), counts, stamps, exporter, lake, result);
    }
    result.rows = total;
    return result;
  } finally {
    await exporter.close();
  }
}

async function apply(
  plan: ColumnarPlan,
  counts: ReadonlyMap<string, number>,
  stamps: ReadonlyMap<string, string>,
  exporter: ParquetExporter,
  lake: ObjectStore,
  result: ColumnarSync,
): Promise<void> {
  const written = new Set<string>();
  for (const source of plan.write) {
    if ((counts.get(source) ?? 0) === 0) continue;
    written.add(await exporter.export(source, stamps.get(source) ?? 'none'));
    result.written++;
  }
  for (const key of plan.remove) {
    if (written.has(key)) continue;
    await deleteObject(lake, key);
    result.removed++;
  }
}

async function deleteObject(lake: ObjectStore, key: string): Promise<void> {
  if (!lake.delete)
    throw new DriftwoodError(
      'CONFIG_INVALID',
      `the lake ${lake.uri} cannot delete objects; ${key} is out of date`,
    );
  await lake.delete(key);
}

/** The table's Parquet files in the lake, by source. */
async function listFiles(
  lake: ObjectStore,
  dataset: string,
  table: string,
): Promise<Map<string, MirrorFile[]>> {
  const files = new Map<string, MirrorFile[]>();
  for (const o of await lake.list(columnarPrefix(dataset, table))) {
    const parsed = parseColumnarKey(dataset, table, o.key);
    if (!parsed) continue;
    const have = files.get(parsed.source) ?? [];
    have.push({ key: o.key, stamp: parsed.stamp, rows: parsed.rows });
    files.set(parsed.source, have);
  }
  return files;
}

/** Rows per source in the warehouse (of `only` when given), through the `source_key` index. */
async function countBySource(
  db: Warehouse,
  table: string,
  only?: readonly string[],
): Promise<Map<string, number>> {
  const q = db(table).select('source_key').count({ n: '*' }).groupBy('source_key');
  if (only) q.whereIn('source_key', only as string[]);
  const rows = (await q) as { source_key: string; n: number | string }[];
  return new Map(rows.map((r) => [r.source_key, Number(r.n)]));
}

const DUCK_TYPE = (c: ColumnContract): string =>
  c.type === 'string'
    ? 'VARCHAR'
    : c.type === 'integer' || c.type === 'timestamp'
      ? 'BIGINT'
      : c.type === 'number'
        ? 'DOUBLE'
        : 'BOOLEAN';
const CHUNK_ROWS = 2048;

/** Writes a source's rows from the warehouse into one Parquet file through an in-memory DuckDB. */
class ParquetExporter {
  private session?: Promise<import('@duckdb/node-api').DuckDBConnection>;
  private instance?: import('@duckdb/node-api').DuckDBInstance;
  private dir?: string;
  private readonly columns: string[];

  constructor(
    private readonly db: Warehouse,
    private readonly lake: ObjectStore,
    private readonly dataset: string,
    private readonly table: TableContract,
  ) {
    this.columns = table.columns.map(storedName);
  }

  private async conn() {
    this.session ??= (async () => {
      const { DuckDBInstance } = await import('@duckdb/node-api');
      this.instance = await DuckDBInstance.create(':memory:');
      this.dir = await mkdtemp(path.join(os.tmpdir(), 'driftwood-columnar-'));
      return this.instance.connect();
    })();
    return this.session;
  }

  /** Exports one source; returns the key written. */
  async export(source: string, stamp: string): Promise<string> {
    const duck = await import('@duckdb/node-api');
    const conn = await this.conn();
    const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
    // Numbers travel as DOUBLE (exact for integers below 2^53, which timestamps in ms are) and are
    // cast back to the contract's types on the way out; a bigint per value would cost more.
    const staged = this.table.columns.map((c) => (DUCK_TYPE(c) === 'BIGINT' ? 'DOUBLE' : DUCK_TYPE(c)));
    await conn.run('DROP TABLE IF EXISTS staged');
    await conn.run(
      `CREATE TABLE staged (${this.columns.map((name, k) => `${q(name)} ${staged[k]}`).join(', ')})`,
    );
    const appender = await conn.createAppender('staged');
    const types = staged.map((t) =>
      t === 'VARCHAR' ? duck.VARCHAR : t === 'DOUBLE' ? duck.DOUBLE : duck.BOOLEAN,
    );
    const buffers: (string | number | boolean | null)[][] = this.columns.map(() => []);
    let rows = 0;
    const flush = () => {
      if (buffers[0]?.length === 0) return;
      const chunk = duck.DuckDBDataChunk.create(types, buffers[0]?.length);
      chunk.setColumns(buffers as never);
      appender.appendDataChunk(chunk);
      for (const b of buffers) b.length = 0;
    };
    const { eachRow } = await import('./duckdb.js');
    await eachRow(
      this.db,
      `SELECT ${this.columns.map(q).join(', ')} FROM ${q(this.table.name)} WHERE source_key = ?`,
      [source],
      (r) => {
        for (let k = 0; k < r.length; k++) {
          const v = r[k];
          const t = staged[k];
          (buffers[k] as unknown[]).push(
            v === null || v === undefined
              ? null
              : t === 'DOUBLE'
                ? Number(v)
                : t === 'BOOLEAN'
                  ? Boolean(v)
                  : String(v),
          );
        }
        rows++;
        if ((buffers[0]?.length ?? 0) === CHUNK_ROWS) flush();
      },
    );
    flush();
    appender.closeSync();
    const file = path.join(this.dir as string, 'out.parquet');
    const select = this.table.columns
      .map(
        (c, k) =>
          `CAST(${q(this.columns[k] as string)} AS ${DUCK_TYPE(c)}) AS ${q(this.columns[k] as string)}`,
      )
      .join(', ');
    // Sorted by time: the feature build reads a window of time, and row groups whose time range
    // lies outside it are skipped by their statistics.
    const timeColumn = this.table.columns.find((c) => c.type === 'timestamp');
    await conn.run(
      `COPY (SELECT ${select} FROM staged${timeColumn ? ` ORDER BY ${q(storedName(timeColumn))}` : ''}) TO '${file}' (FORMAT parquet, COMPRESSION zstd)`,
    );
    const key = columnarKey(this.dataset, this.table.name, source, stamp, rows);
    await this.lake.put(key, await readFile(file));
    return key;
  }

  async close(): Promise<void> {
    if (!this.session) return;
    (await this.session).closeSync();
    this.instance?.closeSync();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** GETs in flight while a table's files are copied out of an S3 lake. */
const COPY_CONCURRENCY = 16;

/**
 * Paths DuckDB can read a table's Parquet files from: the lake's own files when the lake is a
 * folder, else local copies of them (DuckDB's S3 reader is an extension fetched at run time).
 */
export async function localColumnar(
  lake: ObjectStore,
  dataset: string,
  table: string,
): Promise<{ files: string[]; close: () => Promise<void> }> {
  const keys = (await lake.list(columnarPrefix(dataset, table)))
    .map((o) => o.key)
    .filter((k) => parseColumnarKey(dataset, table, k));
  if (lake.uri.startsWith('file://')) {
    const root = fileURLToPath(lake.uri.replace(/^file:\/\/(?!\/)/, 'file:///'));
    return { files: keys.map((k) => path.join(root, k)), close: async () => {} };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'driftwood-columnar-read-'));
  const files = keys.map((_, i) => path.join(dir, `${i}.parquet`));
  // A table landed hourly has a file per hour: fetched one after another, each GET's latency adds
  // up (hundreds of files a build), so several are in flight at once.
  let next = 0;
  const fetchRest = async () => {
    for (let i = next++; i < keys.length; i = next++)
      await writeFile(files[i] as string, await lake.get(keys[i] as string));
  };
  try {
    await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, keys.length) }, fetchRest));
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { files, close: () => rm(dir, { recursive: true, force: true }) };
}
