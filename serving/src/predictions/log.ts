import { closeSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_ID_COLUMN } from './row-text.js';

/** One line of `predictions.jsonl` (the format is documented in docs/api.md). */
export interface PredictionRecord {
  ts: string;
  request_id: string;
  model: { name: string; version: string; alias: string };
  /** false for a shadow prediction: scored by the challenger, not returned to the caller. */
  served: boolean;
  /** HMAC-SHA256 token of the customer id (tasks/src/pii.ts); null without an id or a key. */
  customer_token: string | null;
  features: Record<string, unknown>;
  probability: number;
  label: number;
  /** The A/B experiment and variant that answered; absent outside one (docs/experiments.md). */
  experiment?: string;
  variant?: string;
}

/** `dt=YYYY-MM-DD/hr=HH` of a time in UTC, the partition layout the rest of the platform uses. */
export function partitionOf(ts: number): string {
  const iso = new Date(ts).toISOString();
  return `dt=${iso.slice(0, 10)}/hr=${iso.slice(11, 13)}`;
}

/** The features as logged: the request without its id column (the customer id: PII). */
export function loggableFeatures(
  row: Record<string, unknown>,
  idColumn: string = DEFAULT_ID_COLUMN,
): Record<string, unknown> {
  const { [idColumn]: _omitted, ...features } = row;
  return features;
}

export interface PredictionLogOptions {
  /** `<DRIFTWOOD_HOME>/predictions` */
  dir: string;
  /** Writes what is queued at least this often (ms). */
  flushMs?: number;
  /** Starts a write as soon as this many bytes are queued, without waiting for the timer. */
  flushBytes?: number;
  /**
   * Bytes held in memory at most (queued and being written). Past it, lines go to a spill file
   * (`<spillDir>/<pid>.spill`) with a synchronous write each 256 KiB, which the writer drains in
   * order: a disk that cannot keep up slows the requests down instead of losing their lines.
   */
  maxBufferedBytes?: number;
  /** Where spill files go; `<dir>/.spill` by default (no reader looks there). */
  spillDir?: string;
  /** Called on each failed write; the write is retried (with backoff up to 5 s), never dropped. */
  onWriteError?: (err: unknown) => void;
  now?: () => number;
}

/** Bytes per buffer chunk: lines are encoded into chunks as they come, off the JS heap. */
const CHUNK_BYTES = 256 * 1024;
/** Bytes read from a spill file at a time. */
const SPILL_READ_BYTES = 1024 * 1024;
const NEWLINE = 0x0a;
const TAB = 0x09;

/** Lines of one partition, in order, with when the first of them was accepted (for the lag). */
interface Run {
  partition: string;
  parts: Buffer[];
  lines: number;
  since: number;
}

/** One partition file's share of a batch being written, and how far its write has got. */
interface Pending {
  file: string;
  parts: Buffer[];
  lines: number;
  part: number;
  offset: number;
}

/**
 * Appends predictions as JSON Lines under `<dir>/dt=…/hr=…/predictions.jsonl`, in batches off the
 * request path: `appendLine` only queues; the writer appends every `flushMs`, and as soon as
 * `flushBytes` are queued. Nothing accepted is dropped: past `maxBufferedBytes` in memory, lines
 * spill to a local file that the writer drains after memory; a failed write is retried where it
 * stopped. `lagLines` and `lagSeconds` say how far behind the disk is.
 */
export class PredictionLog {
  /** Encoded lines waiting for the writer, in order, in runs of one partition. */
  private runs: Run[] = [];
  private chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  /** Bytes of `chunk` used, and where the part not yet in `runs` starts. */
  private used = 0;
  private sealed = 0;
  /** Bytes queued in memory, and bytes of the batch being written. */
  private queuedBytes = 0;
  private inFlightBytes = 0;
  /** When the oldest line of the batch being written was accepted. */
  private inFlightSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  /** Lines `flush` callers wait for: the writer goes on until `written` reaches it. */
  private flushTarget = 0;
  private closing = false;
  private retryMs = 0;
  /** The spill file while lines go there; `spillWritten`/`spillRead` are byte offsets in it. */
  private spill:
    | {
        file: string;
        fd: number;
        buffer: Buffer;
        used: number;
        written: number;
        read: number;
        lines: number;
        since: number;
        /** The longest record written to it, so that a read always holds a whole one. */
        longest: number;
      }
    | undefined;
  /** Lines accepted, lines on disk, lines that ever went through a spill file, failed writes. */
  accepted = 0;
  written = 0;
  /** Lines written from spill files that processes killed before draining them left behind. */
  recovered = 0;
  private orphans: string[] = [];
  spilled = 0;
  writeErrors = 0;
  private readonly now: () => number;

  constructor(private readonly options: PredictionLogOptions) {
    this.now = options.now ?? Date.now;
    this.orphans = claimOrphanSpills(this.spillDir());
    if (this.orphans.length > 0) this.kick();
    this.timer = setInterval(() => {
      this.flush().catch((err) => options.onWriteError?.(err));
    }, options.flushMs ?? 1000);
    this.timer.unref();
  }

  /** Lines accepted and not yet on disk (in memory, being written, or in the spill file). */
  get lagLines(): number {
    return this.accepted - this.written;
  }

  /** Seconds since the oldest line not yet on disk was accepted (0 when nothing waits). */
  lagSeconds(now = this.now()): number {
    const since =
      this.inFlightSince ?? this.runs[0]?.since ?? (this.spill?.lines ? this.spill.since : undefined);
    return since === undefined ? 0 : Math.max(0, now - since) / 1000;
  }

  /** Queues a line already formatted (newline included) for its `dt=…/hr=…` partition. */
  appendLine(partition: string, line: string): void {
    this.accepted++;
    if (this.spill) {
      this.toSpill(partition, line);
      return;
    }
    const max = this.options.maxBufferedBytes ?? 64 * 1024 * 1024;
    if (this.queuedBytes + this.inFlightBytes + line.length * 3 > max && this.openSpill()) {
      this.toSpill(partition, line);
      return;
    }
    let run = this.runs[this.runs.length - 1];
    if (run?.partition !== partition) {
      this.seal();
      run = { partition, parts: [], lines: 0, since: this.now() };
      this.runs.push(run);
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    if (line.length * 3 > this.chunk.length - this.used) {
      this.seal();
      this.chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, line.length * 3));
      this.used = 0;
      this.sealed = 0;
    }
    const n = this.chunk.write(line, this.used);
    this.used += n;
    run.lines++;
    this.queuedBytes += n;
    if (!this.writing && this.queuedBytes >= (this.options.flushBytes ?? 1024 * 1024)) this.kick();
  }

  /** Resolves when every line accepted before the call is on disk. */
  async flush(): Promise<void> {
    this.flushTarget = Math.max(this.flushTarget, this.accepted);
    const target = this.accepted;
    while (this.written < target) {
      this.kick();
      await this.writing;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.closing = true;
    await this.flush();
    // Spill files of dead processes may still be draining: their lines too are written first.
    while (this.writing) await this.writing;
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = this.drain()
      .catch(async (err) => {
        // Nothing is taken off the queues before it is written: the next drain starts over.
        this.failed(err);
        await this.backOff();
      })
      .finally(() => {
        this.writing = undefined;
      });
  }

  private failed(err: unknown): void {
    this.writeErrors++;
    this.options.onWriteError?.(err);
  }

  /** Waits before a retry, 0.1 s doubling to 5 s while failures last. */
  private backOff(): Promise<void> {
    this.retryMs = Math.min(5000, Math.max(100, this.retryMs * 2));
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, this.retryMs);
      // A retry must not keep an idle process alive, unless shutdown waits for it.
      if (!this.closing) t.unref();
    });
  }

  /** Moves the bytes queued since the last seal into the current run. */
  private seal(): void {
    if (this.used > this.sealed) {
      this.runs[this.runs.length - 1]?.parts.push(this.chunk.subarray(this.sealed, this.used));
      this.sealed = this.used;
    }
  }

  /** Writes batches while a flush waits, a flush's worth is queued, or the spill file holds lines. */
  private async drain(): Promise<void> {
    for (let orphan = this.orphans.shift(); orphan; orphan = this.orphans.shift())
      try {
        await this.drainOrphan(orphan);
      } catch (err) {
        this.orphans.unshift(orphan);
        throw err;
      }
    for (;;) {
      let batch: Run[];
      if (
        this.runs.length > 0 &&
        (this.written < this.flushTarget ||
          this.queuedBytes >= (this.options.flushBytes ?? 1024 * 1024) ||
          this.spill)
      ) {
        this.seal();
        batch = this.runs;
        this.runs = [];
        this.inFlightBytes = this.queuedBytes;
        this.queuedBytes = 0;
      } else if (this.spill) {
        batch = await this.readSpill();
        if (batch.length === 0) {
          if (this.endSpill()) continue;
          return;
        }
      } else return;
      this.inFlightSince = batch[0]?.since;
      await this.writeBatch(batch);
      this.inFlightBytes = 0;
      this.inFlightSince = undefined;
    }
  }

  /** Appends a batch, one write per part per partition file, retrying a failed write where it stopped. */
  private async writeBatch(batch: Run[], accepted = true): Promise<void> {
    const byFile = new Map<string, Pending>();
    for (const run of batch) {
      const file = path.join(this.options.dir, run.partition, 'predictions.jsonl');
      const p = byFile.get(file);
      if (p) {
        p.parts.push(...run.parts);
        p.lines += run.lines;
      } else byFile.set(file, { file, parts: [...run.parts], lines: run.lines, part: 0, offset: 0 });
    }
    for (const pending of byFile.values()) pending.parts = coalesce(pending.parts);
    for (const pending of byFile.values()) {
      for (;;) {
        try {
          await appendPending(pending);
          if (accepted) this.written += pending.lines;
          else this.recovered += pending.lines;
          this.retryMs = 0;
          break;
        } catch (err) {
          this.failed(err);
          await this.backOff();
        }
      }
    }
  }

  /** Writes a spill file left behind by a dead process, then deletes it (a torn last record is skipped). */
  private async drainOrphan(file: string): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      this.options.onWriteError?.(err);
      return;
    }
    try {
      let buf = Buffer.allocUnsafe(SPILL_READ_BYTES);
      let offset = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
        const { runs, consumed } = parseSpill(buf, bytesRead, this.now());
        if (consumed === 0) {
          if (bytesRead < buf.length) break;
          buf = Buffer.allocUnsafe(buf.length * 2);
          continue;
        }
        await this.writeBatch(runs, false);
        offset += consumed;
      }
    } finally {
      await handle.close();
    }
    await unlink(file).catch((err) => this.options.onWriteError?.(err));
  }

  private spillDir(): string {
    return this.options.spillDir ?? path.join(this.options.dir, '.spill');
  }

  /** Starts spilling: false (and the line stays in memory) when no spill file can be opened. */
  private openSpill(): boolean {
    const dir = this.spillDir();
    const file = path.join(dir, `${process.pid}-${this.now()}.spill`);
    try {
      mkdirSync(dir, { recursive: true });
      const fd = openSync(file, 'w+');
      this.spill = {
        file,
        fd,
        buffer: Buffer.allocUnsafe(CHUNK_BYTES),
        used: 0,
        written: 0,
        read: 0,
        lines: 0,
        since: this.now(),
        longest: 0,
      };
      return true;
    } catch (err) {
      this.writeErrors++;
      this.options.onWriteError?.(err);
      return false;
    }
  }

  /** Appends `partition<TAB>line` to the spill file's buffer, written synchronously when full. */
  private toSpill(partition: string, line: string): void {
    const s = this.spill as NonNullable<PredictionLog['spill']>;
    const need = (partition.length + 1 + line.length) * 3;
    if (need > s.buffer.length - s.used) {
      this.writeSpillBuffer();
      if (need > s.buffer.length) s.buffer = Buffer.allocUnsafe(need);
    }
    const start = s.used;
    s.used += s.buffer.write(partition, s.used);
    s.buffer[s.used++] = TAB;
    s.used += s.buffer.write(line, s.used);
    s.longest = Math.max(s.longest, s.used - start);
    if (s.lines === 0) s.since = this.now();
    s.lines++;
    this.spilled++;
    this.kick();
  }

  /** Writes the spill buffer to the spill file, retrying until the disk takes it (back-pressure). */
  private writeSpillBuffer(): void {
    const s = this.spill;
    if (!s || s.used === 0) return;
    let done = 0;
    while (done < s.used) {
      try {
        done += writeSync(s.fd, s.buffer, done, s.used - done, s.written + done);
      } catch (err) {
        this.writeErrors++;
        this.options.onWriteError?.(err);
        // Blocking is the back-pressure here: the requests wait for the disk, nothing is dropped.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      }
    }
    s.written += s.used;
    s.used = 0;
  }

  /** The next whole lines of the spill file as runs (the buffer written out first). */
  private async readSpill(): Promise<Run[]> {
    const s = this.spill as NonNullable<PredictionLog['spill']>;
    this.writeSpillBuffer();
    if (s.read >= s.written) return [];
    const size = Math.min(Math.max(SPILL_READ_BYTES, s.longest), s.written - s.read);
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    const handle: FileHandle = await open(s.file, 'r');
    try {
      while (got < size) {
        const { bytesRead } = await handle.read(buf, got, size - got, s.read + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } finally {
      await handle.close();
    }
    const { runs, consumed: at } = parseSpill(buf, got, s.since);
    s.read += at;
    s.lines -= runs.reduce((n, r) => n + r.lines, 0);
    return runs;
  }

  /** Stops spilling once the file is drained and nothing waits in its buffer; true if it did. */
  private endSpill(): boolean {
    const s = this.spill;
    if (!s || s.used > 0 || s.read < s.written) return false;
    this.spill = undefined;
    try {
      closeSync(s.fd);
      unlinkSync(s.file);
    } catch (err) {
      this.options.onWriteError?.(err);
    }
    return true;
  }
}

/** The whole `partition<TAB>line` records at the start of `buf[0, got)`, as runs, and their bytes. */
function parseSpill(buf: Buffer, got: number, since: number): { runs: Run[]; consumed: number } {
  const runs: Run[] = [];
  let at = 0;
  for (;;) {
    const end = buf.indexOf(NEWLINE, at);
    if (end === -1 || end >= got) break;
    const tab = buf.indexOf(TAB, at);
    const partition = buf.toString('latin1', at, tab);
    const line = buf.subarray(tab + 1, end + 1);
    let run = runs[runs.length - 1];
    if (run?.partition !== partition) {
      run = { partition, parts: [], lines: 0, since };
      runs.push(run);
    }
    run.parts.push(line);
    run.lines++;
    at = end + 1;
  }
  return { runs, consumed: at };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Spill files of processes that are gone (killed before they drained them), claimed for this one
 * by renaming them to `<pid>-….claimed`: of two processes starting together, only one wins a file.
 */
function claimOrphanSpills(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const claimed: string[] = [];
  for (const name of names) {
    const owner = /^(\d+)-.*\.(spill|claimed)$/.exec(name)?.[1];
    if (owner === undefined || Number(owner) === process.pid || alive(Number(owner))) continue;
    const to = path.join(
      dir,
      `${process.pid}-${name.replace(/^\d+-/, '').replace(/\.(spill|claimed)$/, '')}.claimed`,
    );
    try {
      renameSync(path.join(dir, name), to);
      claimed.push(to);
    } catch {
      // another process claimed it first
    }
  }
  return claimed;
}

/**
 * Small parts merged into buffers of up to a chunk: lines of interleaved partitions (several
 * datasets, or spilled lines) arrive as many short parts, and each part is one write.
 */
function coalesce(parts: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let group: Buffer[] = [];
  let bytes = 0;
  const close = () => {
    if (group.length > 0) out.push(group.length === 1 ? (group[0] as Buffer) : Buffer.concat(group, bytes));
    group = [];
    bytes = 0;
  };
  for (const part of parts) {
    if (bytes + part.length > CHUNK_BYTES) close();
    group.push(part);
    bytes += part.length;
  }
  close();
  return out;
}

/**
 * Appends a partition's parts (whole lines, at most a chunk each) with one write each to a file
 * opened for appending: the API's worker processes append to the same files, and on a local file
 * system one O_APPEND write is not interleaved with another's, so their lines never mix mid-line.
 * `part` and `offset` advance as bytes land, so a retry after a failed write goes on where it stopped.
 */
async function appendPending(p: Pending): Promise<void> {
  await mkdir(path.dirname(p.file), { recursive: true });
  const handle = await open(p.file, 'a');
  try {
    for (; p.part < p.parts.length; p.part++, p.offset = 0) {
      const part = p.parts[p.part] as Buffer;
      while (p.offset < part.length) p.offset += (await handle.write(part, p.offset)).bytesWritten;
    }
  } finally {
    await handle.close();
  }
}
