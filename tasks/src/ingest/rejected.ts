import { randomBytes } from 'node:crypto';
import { appendFileSync, createReadStream, mkdirSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Problem } from '../contracts/rows.js';
import type { TableContract } from '../contracts/types.js';
import { type ObjectStore, processAlive } from '../lake/object-store.js';
import { tokenise } from '../pii.js';

/** Rejected rows kept in memory before they go to a local temporary file: memory stays bounded. */
const SPILL_BYTES = 8 * 1024 * 1024;

/** What a PII value becomes outside the raw file: its warehouse token (or a mark, without a key). */
export function maskPii(value: unknown, piiKey: string | undefined): unknown {
  if (value === null || value === undefined || value === '') return value ?? null;
  return piiKey ? tokenise(String(value), piiKey) : '[pii]';
}

/** A problem as it may be written down: the value of a PII column tokenised. */
export function maskProblem(p: Problem, pii: ReadonlySet<string>, piiKey: string | undefined): Problem {
  return p.column !== null && pii.has(p.column) ? { ...p, value: maskPii(p.value, piiKey) } : p;
}

const json = (v: unknown): string =>
  JSON.stringify(v, (_k, x) =>
    typeof x === 'bigint' ? x.toString() : x instanceof Date ? x.toISOString() : (x as unknown),
  );

/**
 * The rows a file's load rejected (dropped per policy, or malformed), as JSON Lines for
 * `quarantine/<dataset>/…/<file>.rejected.jsonl`: each with its row number, why it was dropped
 * (column, value, rule, action) and its values, PII tokenised as in the warehouse, never raw.
 */
export class RejectedRows {
  private chunks: string[] = [];
  private bytes = 0;
  private spill: string | undefined;
  private readonly pii: Set<string>;

  /**
   * @param spillDir where rows spill past the memory bound (named with this process's id, so a
   *   later run can tell a killed run's leftovers; see sweepSpills). Never inside the lake.
   */
  constructor(
    table: TableContract | undefined,
    private readonly piiKey: string | undefined,
    private readonly spillDir: string = os.tmpdir(),
  ) {
    this.pii = new Set(table?.columns.filter((c) => c.role === 'pii').map((c) => c.name) ?? []);
  }

  get size(): number {
    return this.count;
  }
  private count = 0;

  /** A row dropped by the contract: its values by column, PII columns tokenised. */
  add(row: number, values: Record<string, unknown>, problems: readonly Problem[]): void {
    const masked: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(values)) masked[k] = this.pii.has(k) ? maskPii(v, this.piiKey) : v;
    this.push({ row, problems: problems.map((p) => this.masked(p)), values: masked });
  }

  /**
   * A record that does not line up with the header. Its fields cannot be trusted to sit under their
   * columns: a field split in two moves later values right, a lost separator moves them left. So
   * every field from the first position a PII value could have moved to is tokenised.
   */
  addMalformed(
    row: number,
    detail: string | undefined,
    header: readonly string[],
    fields?: readonly string[],
  ): void {
    const entry: Record<string, unknown> = {
      row,
      problems: [{ row, column: null, value: null, rule: 'malformed_row', action: 'dropped_row', detail }],
    };
    if (fields) {
      const firstPii = header.findIndex((h) => this.pii.has(h));
      const safeBefore = firstPii < 0 ? fields.length : firstPii - Math.abs(header.length - fields.length);
      entry.fields = fields.map((f, j) => (j < safeBefore ? f : maskPii(f, this.piiKey)));
    }
    this.push(entry);
  }

  private masked(p: Problem): Problem {
    return maskProblem(p, this.pii, this.piiKey);
  }

  private push(entry: Record<string, unknown>): void {
    const line = `${json(entry)}\n`;
    this.count++;
    this.chunks.push(line);
    this.bytes += line.length;
    if (this.bytes >= SPILL_BYTES) {
      if (!this.spill) {
        mkdirSync(this.spillDir, { recursive: true });
        this.spill = path.join(
          this.spillDir,
          `driftwood-rejected.${process.pid}.${randomBytes(8).toString('hex')}.tmp`,
        );
      }
      appendFileSync(this.spill, this.chunks.join(''));
      this.chunks = [];
      this.bytes = 0;
    }
  }

  /** Writes the rows to the lake under `key` (replacing what a killed run may have left there). */
  async save(lake: ObjectStore, key: string): Promise<void> {
    if (this.spill) {
      if (this.chunks.length > 0) appendFileSync(this.spill, this.chunks.join(''));
      await lake.putStream(key, createReadStream(this.spill));
    } else await lake.put(key, this.chunks.join(''));
    await this.discard();
  }

  /** Forgets every row, and the temporary file if any. */
  async discard(): Promise<void> {
    const spill = this.spill;
    this.chunks = [];
    this.bytes = 0;
    this.count = 0;
    this.spill = undefined;
    if (spill) await rm(spill, { force: true });
  }
}

/**
 * Removes rejected-row spill files of ingest runs that are no longer running (killed part-way):
 * they hold rows of a raw file. A running ingest's files are left alone.
 */
export async function sweepSpills(dir: string): Promise<{ path: string; bytes: number }[]> {
  const removed: { path: string; bytes: number }[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return removed;
    throw err;
  }
  for (const name of names) {
    const pid = /^driftwood-rejected\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name)?.[1];
    if (pid === undefined || processAlive(Number(pid))) continue;
    const file = path.join(dir, name);
    const bytes = (await stat(file).catch(() => undefined))?.size ?? 0;
    await rm(file, { force: true });
    removed.push({ path: file, bytes });
  }
  return removed;
}
