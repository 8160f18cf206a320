import { mkdir, open } from 'node:fs/promises';
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
  /** Records held in memory at most; beyond it new records are dropped and counted. */
  maxBuffered?: number;
  flushMs?: number;
  onFlushError?: (err: unknown) => void;
}

/**
 * Appends predictions as JSON Lines under `<dir>/dt=…/hr=…/predictions.jsonl`, in batches off the
 * request path: `append` only queues; a timer (or `flush`) writes each partition with one append.
 * The buffer is bounded, so a slow disk costs dropped log lines (counted), never request latency.
 */
/** Bytes per buffer chunk: lines are encoded into chunks as they come, off the JS heap. */
const CHUNK_BYTES = 256 * 1024;

export class PredictionLog {
  /**
   * Encoded lines waiting for the disk, in order, in runs of one partition. Lines are written into
   * byte chunks when queued, so the heap does not hold thousands of strings for the collector to
   * copy until the next flush.
   */
  private runs: { partition: string; parts: Buffer[]; lines: number }[] = [];
  private chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  /** Bytes of `chunk` used, and where the part not yet in `runs` starts. */
  private used = 0;
  private sealed = 0;
  private partition: string | undefined;
  private bufferedLines = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  written = 0;
  dropped = 0;

  constructor(private readonly options: PredictionLogOptions) {
    this.timer = setInterval(() => void this.flush(), options.flushMs ?? 1000);
    this.timer.unref();
  }

  /**
   * Queues a line already formatted (newline included) for its `dt=…/hr=…` partition; false when
   * the buffer holds `maxBuffered` lines already (the line is dropped and counted).
   */
  appendLine(partition: string, line: string): boolean {
    if (this.bufferedLines >= (this.options.maxBuffered ?? 10_000)) {
      this.dropped++;
      return false;
    }
    if (partition !== this.partition) {
      this.seal();
      this.partition = partition;
      this.runs.push({ partition, parts: [], lines: 0 });
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    if (line.length * 3 > this.chunk.length - this.used) {
      this.seal();
      this.chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, line.length * 3));
      this.used = 0;
      this.sealed = 0;
    }
    this.used += this.chunk.write(line, this.used);
    (this.runs[this.runs.length - 1] as { lines: number }).lines++;
    this.bufferedLines++;
    return true;
  }

  /** Counts lines lost before they reached the buffer (one that could not be formatted). */
  countDropped(n: number): void {
    this.dropped += n;
  }

  /** Writes what is buffered; concurrent calls queue behind each other so lines keep their order. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writeBuffered());
    return this.flushing;
  }

  /** Moves the bytes queued since the last seal into the current run. */
  private seal(): void {
    if (this.used > this.sealed) {
      this.runs[this.runs.length - 1]?.parts.push(this.chunk.subarray(this.sealed, this.used));
      this.sealed = this.used;
    }
  }

  private async writeBuffered(): Promise<void> {
    this.seal();
    if (this.runs.length === 0) return;
    const runs = this.runs;
    this.runs = [];
    this.partition = undefined;
    this.bufferedLines = 0;
    const byPartition = new Map<string, { parts: Buffer[]; lines: number }>();
    for (const { partition, parts, lines } of runs) {
      const p = byPartition.get(partition);
      if (p) {
        p.parts.push(...parts);
        p.lines += lines;
      } else byPartition.set(partition, { parts, lines });
    }
    for (const [partition, { parts, lines }] of byPartition) {
      const dir = path.join(this.options.dir, partition);
      try {
        await mkdir(dir, { recursive: true });
        await appendParts(path.join(dir, 'predictions.jsonl'), parts);
        this.written += lines;
      } catch (err) {
        this.dropped += lines;
        this.options.onFlushError?.(err);
      }
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}

/**
 * Appends each part (whole lines, at most a chunk) with one write to a file opened for appending:
 * the API's worker processes append to the same files, and on a local file system one O_APPEND
 * write is not interleaved with another's, so their lines never mix mid-line.
 */
async function appendParts(file: string, parts: Buffer[]): Promise<void> {
  const handle = await open(file, 'a');
  try {
    for (const part of parts) {
      let done = 0;
      while (done < part.length) done += (await handle.write(part, done)).bytesWritten;
    }
  } finally {
    await handle.close();
  }
}
