import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Warehouse } from '../warehouse/db.js';

/** The part of node-postgres' connection a COPY … FROM STDIN needs (pg/lib/connection.js). */
interface CopyConnection {
  stream: Writable;
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
}

/** Socket bytes queued before a write waits for 'drain': memory stays flat however big the file. */
const HIGH_WATER = 4 * 1024 * 1024;

/**
 * A streaming `COPY … FROM STDIN` as a node-postgres submittable: the client hands it the connection
 * when the server answers CopyInResponse; chunks are then written as they come, with backpressure,
 * until `end` (CopyDone) or `fail` (CopyFail). The protocol pg-copy-streams speaks, without the
 * dependency. A server error mid-stream (a key clash, a bad value) stops the writes: the server
 * ignores CopyData after it (protocol: simple-query COPY), and `end`/`write` reject with the error.
 */
class CopyIn {
  private connection?: CopyConnection;
  private error: unknown;
  private ready!: { resolve: () => void; reject: (err: unknown) => void };
  private readonly started: Promise<void>;
  readonly done: Promise<void>;
  private settle!: (err?: unknown) => void;

  constructor(readonly text: string) {
    this.started = new Promise((resolve, reject) => {
      this.ready = { resolve, reject };
    });
    this.done = new Promise((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve());
    });
    // Whoever awaits them sees the error; unawaited they must not crash the process.
    this.started.catch(() => {});
    this.done.catch(() => {});
  }
  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }
  handleCopyInResponse(connection: CopyConnection): void {
    this.connection = connection;
    this.ready.resolve();
  }
  handleCommandComplete(): void {}
  // node-postgres drops the active query on an error: no handleReadyForQuery follows, so settle
  // here; the next statement waits in the client's queue for the server's ReadyForQuery.
  handleError(err: unknown): void {
    this.error = err;
    this.ready.reject(err);
    this.settle(err);
  }
  handleReadyForQuery(): void {
    this.ready.reject(this.error ?? new Error('COPY ended before it started'));
    this.settle(this.error);
  }

  async write(chunk: Buffer): Promise<void> {
    await this.started;
    if (this.error) throw this.error;
    const conn = this.connection as CopyConnection;
    conn.sendCopyFromChunk(chunk);
    if (conn.stream.writableLength > HIGH_WATER) await Promise.race([once(conn.stream, 'drain'), this.done]);
    if (this.error) throw this.error;
  }
  async end(): Promise<void> {
    await this.started;
    if (!this.error) this.connection?.endCopyFrom();
    await this.done;
  }
  /** Aborts the COPY (the statement fails, the transaction is left to roll back); never throws. */
  async fail(reason: string): Promise<void> {
    try {
      await this.started;
      if (!this.error) this.connection?.sendCopyFail(reason);
      await this.done;
    } catch {
      // The COPY failed, as asked.
    }
  }
}

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Bulk load for PostgreSQL inside the file's transaction, as one streamed COPY. `direct` copies into
 * the table itself: the fast way for a file whose keys are new (the usual case), and a key clash
 * fails it (23505) so the caller can roll back to a savepoint and load again `staged`. `staged`
 * copies into a temporary table (dropped at commit) and `merge` upserts the staged rows once, the
 * last row of a key winning as with the batched upserts.
 */
export class PgCopyLoader {
  private readonly target: string;
  private copy?: CopyIn;

  constructor(
    private readonly trx: Warehouse,
    private readonly table: string,
    private readonly columns: readonly string[],
    private readonly key: string,
    readonly mode: 'direct' | 'staged',
    private readonly format: 'csv' | 'binary' = 'csv',
  ) {
    this.target = mode === 'direct' ? table : `dw_stage_${table}`;
  }

  /** Whether the COPY has begun (a first chunk was written). */
  get started(): boolean {
    return this.copy !== undefined;
  }

  /** Sends one chunk of the body (copied by the driver, so the caller may reuse it); the first call starts the COPY. */
  async write(body: Buffer): Promise<void> {
    if (!this.copy) {
      if (this.mode === 'staged')
        await this.trx.raw(
          `CREATE TEMP TABLE ${q(this.target)} (LIKE ${q(this.table)} INCLUDING DEFAULTS, dw_seq bigserial) ON COMMIT DROP`,
        );
      const conn = (await this.trx.client.acquireConnection()) as { query(s: CopyIn): unknown };
      this.copy = new CopyIn(
        `COPY ${q(this.target)} (${this.columns.map(q).join(', ')}) FROM STDIN WITH (FORMAT ${this.format})`,
      );
      conn.query(this.copy);
    }
    await this.copy.write(body);
  }

  /** Ends the COPY; in `staged` mode then upserts the staged rows into the table. */
  async finish(): Promise<void> {
    if (!this.copy) return;
    await this.copy.end();
    if (this.mode === 'direct') return;
    const cols = this.columns.map(q).join(', ');
    const update = this.columns
      .filter((c) => c !== this.key)
      .map((c) => `${q(c)} = excluded.${q(c)}`)
      .join(', ');
    await this.trx.raw(
      `INSERT INTO ${q(this.table)} (${cols}) SELECT ${cols} FROM (SELECT DISTINCT ON (${q(this.key)}) * FROM ${q(this.target)} ORDER BY ${q(this.key)}, dw_seq DESC) s ON CONFLICT (${q(this.key)}) DO UPDATE SET ${update}`,
    );
  }

  /** Aborts an open COPY so the connection can roll the transaction back. */
  async abort(reason: string): Promise<void> {
    await this.copy?.fail(reason);
  }
}

/** A key already in the table (PostgreSQL unique_violation). */
export const isKeyClash = (err: unknown): boolean => (err as { code?: string })?.code === '23505';
