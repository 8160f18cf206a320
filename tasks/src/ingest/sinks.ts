import type { TableContract } from '../contracts/types.js';
import type { Warehouse } from '../warehouse/db.js';
import {
  BINARY_HEADER,
  BINARY_TRAILER,
  type BinaryType,
  compileBinaryRecord,
  encodeRow,
  TupleBuffer,
} from './copy-binary.js';
import { compileCopyLine, copyCell } from './copy-line.js';
import type { PgCopyLoader } from './pg-copy.js';

/** A clean CSV record written straight into the sink (true), or left for the full check (false). */
export type FastRecord = (fields: readonly string[]) => boolean;

/** Compiles a sink's FastRecord for one file's header. */
export type CompileFastRecord = (
  table: TableContract,
  header: readonly string[],
  sourceKey: string,
  piiKey: string | undefined,
) => FastRecord;

/**
 * Where a file's accepted rows go, a chunk at a time: the caller adds rows and flushes when `size`
 * reaches its batch size, then finishes (or aborts, when the file is rejected part-way).
 */
export interface RowSink {
  /** Whether rows go through a COPY (a key clash then means: load again through a merge). */
  readonly copies: boolean;
  /** Rows waiting for the next flush. */
  readonly size: number;
  /**
   * The CSV fast path for a file's header, compiled once per file: a record whose every value is
   * clean is written with no record object; undefined when the sink has none.
   */
  fastRecords?: CompileFastRecord;
  /** A row by stored column name (PII already tokenised), with its key value. */
  add(key: unknown, row: Record<string, unknown>): void;
  flush(): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/** Bytes of COPY lines gathered before they are sent, unless the batch fills first. */
const COPY_CHUNK = 1 << 20;

/**
 * PostgreSQL: every row becomes a CSV line of one streamed COPY. Lines are encoded straight into one
 * reused buffer (the driver copies what it sends), so no batch of lines lives on as strings.
 */
export class CopySink implements RowSink {
  readonly copies = true;
  private buffer = Buffer.allocUnsafe(COPY_CHUNK);
  private used = 0;
  size = 0;

  constructor(
    private readonly copier: PgCopyLoader,
    private readonly columns: readonly string[],
  ) {}

  readonly fastRecords: CompileFastRecord = (table, header, sourceKey, piiKey) => {
    const line = compileCopyLine(table, header, sourceKey, piiKey);
    return (fields) => {
      const text = line(fields);
      if (text === undefined) return false;
      this.addLine(text);
      return true;
    };
  };
  private addLine(line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    if (this.used + line.length * 3 > this.buffer.length) this.grow(line.length * 3);
    this.used += this.buffer.write(line, this.used, 'utf8');
    this.size++;
  }
  add(_key: unknown, row: Record<string, unknown>): void {
    let line = '';
    for (let i = 0; i < this.columns.length; i++)
      line += (i === 0 ? '' : ',') + copyCell(row[this.columns[i] as string]);
    this.addLine(`${line}\n`);
  }
  private grow(need: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.used + need));
    this.buffer.copy(bigger, 0, 0, this.used);
    this.buffer = bigger;
  }
  async flush(): Promise<void> {
    if (this.size === 0) return;
    const body = this.buffer.subarray(0, this.used);
    this.used = 0;
    this.size = 0;
    await this.copier.write(body);
  }
  async finish(): Promise<void> {
    await this.flush();
    await this.copier.finish();
  }
  async abort(): Promise<void> {
    await this.copier.abort('the file was rejected');
  }
}

/**
 * PostgreSQL, binary COPY: every row becomes a tuple of one streamed `COPY … (FORMAT binary)`, so
 * the server parses no text. Tuples are encoded into one reused buffer; the header goes before the
 * first tuple and the trailer after the last.
 */
export class BinaryCopySink implements RowSink {
  readonly copies = true;
  private readonly out = new TupleBuffer(COPY_CHUNK + (COPY_CHUNK >> 2));
  size = 0;

  constructor(
    private readonly copier: PgCopyLoader,
    private readonly columns: readonly string[],
    private readonly types: readonly BinaryType[],
    private readonly table: string,
  ) {
    this.out.ensure(BINARY_HEADER.length);
    BINARY_HEADER.copy(this.out.buf);
    this.out.used = BINARY_HEADER.length;
  }

  readonly fastRecords: CompileFastRecord = (table, header, sourceKey, piiKey) => {
    const record = compileBinaryRecord(table, this.types, header, sourceKey, piiKey);
    return (fields) => {
      if (!record(fields, this.out)) return false;
      this.size++;
      return true;
    };
  };
  add(_key: unknown, row: Record<string, unknown>): void {
    encodeRow(row, this.columns, this.types, this.table, this.out);
    this.size++;
  }
  async flush(): Promise<void> {
    if (this.size === 0) return;
    const body = this.out.buf.subarray(0, this.out.used);
    this.out.used = 0;
    this.size = 0;
    await this.copier.write(body);
  }
  async finish(): Promise<void> {
    await this.flush();
    if (!this.copier.started) return;
    await this.copier.write(BINARY_TRAILER);
    await this.copier.finish();
  }
  async abort(): Promise<void> {
    await this.copier.abort('the file was rejected');
  }
}

/** Rows per statement: SQLite binds at most 32766 parameters, PostgreSQL 65535. */
const MAX_PARAMS = 30_000;

/**
 * SQLite (and any backend without COPY): one multi-row `INSERT … VALUES … ON CONFLICT (key) DO
 * UPDATE` per chunk of a batch, in the file's transaction; the last row of a key in a batch wins. A
 * VALUES list is not subject to SQLite's 500-term limit on compound SELECTs, which knex's multi-row
 * insert for SQLite runs into.
 */
export class UpsertSink implements RowSink {
  readonly copies = false;
  private batch = new Map<unknown, Record<string, unknown>>();

  constructor(
    private readonly trx: Warehouse,
    private readonly table: string,
    private readonly columns: readonly string[],
    private readonly key: string,
  ) {}

  get size(): number {
    return this.batch.size;
  }
  add(key: unknown, row: Record<string, unknown>): void {
    this.batch.set(key, row);
  }
  async flush(): Promise<void> {
    if (this.batch.size === 0) return;
    const rows = [...this.batch.values()];
    this.batch = new Map();
    const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
    const perStatement = Math.max(1, Math.floor(MAX_PARAMS / this.columns.length));
    const tuple = `(${this.columns.map(() => '?').join(',')})`;
    const update = this.columns
      .filter((c) => c !== this.key)
      .map((c) => `${q(c)} = excluded.${q(c)}`)
      .join(', ');
    for (let i = 0; i < rows.length; i += perStatement) {
      const chunk = rows.slice(i, i + perStatement);
      const bindings: unknown[] = [];
      for (const r of chunk) for (const c of this.columns) bindings.push(r[c] ?? null);
      await this.trx.raw(
        `INSERT INTO ${q(this.table)} (${this.columns.map(q).join(', ')}) VALUES ${chunk.map(() => tuple).join(',')} ON CONFLICT (${q(this.key)}) DO UPDATE SET ${update}`,
        bindings as never,
      );
    }
  }
  async finish(): Promise<void> {
    await this.flush();
  }
  async abort(): Promise<void> {
    this.batch = new Map();
  }
}
