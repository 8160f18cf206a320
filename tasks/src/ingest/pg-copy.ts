import type { Warehouse } from '../warehouse/db.js';

/** The part of node-postgres' connection a COPY … FROM STDIN needs (pg/lib/connection.js). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
}

/**
 * A `COPY … FROM STDIN` as a node-postgres submittable: the client hands it the connection when
 * the server answers CopyInResponse, and it streams one CSV body. The same protocol pg-copy-streams
 * speaks, for one in-memory chunk at a time (one batch), so no extra dependency.
 */
class CopyFromStdin {
  private error: unknown;
  readonly done: Promise<void>;
  private settle!: (err?: unknown) => void;

  constructor(
    readonly text: string,
    private readonly body: Buffer,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve());
    });
  }
  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }
  handleCopyInResponse(connection: CopyConnection): void {
    connection.sendCopyFromChunk(this.body);
    connection.endCopyFrom();
  }
  handleCommandComplete(): void {}
  handleError(err: unknown): void {
    this.error = err;
  }
  handleReadyForQuery(): void {
    this.settle(this.error);
  }
}

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** CSV for COPY: NULL is an empty unquoted field, every text is quoted (so '' stays ''). */
function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return `"${String(v).replace(/"/g, '""')}"`;
}

/**
 * Bulk load for PostgreSQL inside the file's transaction: each batch is COPYed into a temporary
 * staging table (dropped at commit), and `mergeStaged` upserts the staged rows into the table once,
 * the last row of a key winning as with the batched upserts.
 */
export class PgCopyLoader {
  private readonly stage: string;
  private created = false;

  constructor(
    private readonly trx: Warehouse,
    private readonly table: string,
    private readonly columns: readonly string[],
    private readonly key: string,
  ) {
    this.stage = `dw_stage_${table}`;
  }

  async copy(rows: readonly Record<string, unknown>[]): Promise<void> {
    if (!this.created) {
      await this.trx.raw(
        `CREATE TEMP TABLE ${q(this.stage)} (LIKE ${q(this.table)} INCLUDING DEFAULTS, dw_seq bigserial) ON COMMIT DROP`,
      );
      this.created = true;
    }
    let text = '';
    for (const r of rows) text += `${this.columns.map((c) => csvCell(r[c])).join(',')}\n`;
    const conn = (await this.trx.client.acquireConnection()) as { query(s: CopyFromStdin): unknown };
    const copy = new CopyFromStdin(
      `COPY ${q(this.stage)} (${this.columns.map(q).join(', ')}) FROM STDIN WITH (FORMAT csv)`,
      Buffer.from(text),
    );
    conn.query(copy);
    await copy.done;
  }

  async mergeStaged(): Promise<void> {
    if (!this.created) return;
    const cols = this.columns.map(q).join(', ');
    const update = this.columns
      .filter((c) => c !== this.key)
      .map((c) => `${q(c)} = excluded.${q(c)}`)
      .join(', ');
    await this.trx.raw(
      `INSERT INTO ${q(this.table)} (${cols}) SELECT ${cols} FROM (SELECT DISTINCT ON (${q(this.key)}) * FROM ${q(this.stage)} ORDER BY ${q(this.key)}, dw_seq DESC) s ON CONFLICT (${q(this.key)}) DO UPDATE SET ${update}`,
    );
  }
}
