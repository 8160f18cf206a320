import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { tokenise } from '@driftwood/tasks';

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

/** The features as logged: the request without its customer id, which is PII. */
export function loggableFeatures(row: Record<string, unknown>): Record<string, unknown> {
  const { customer_id: _omitted, ...features } = row;
  return features;
}

export function customerToken(row: Record<string, unknown>, piiKey: string | undefined): string | null {
  const id = row.customer_id;
  return typeof id === 'string' && piiKey ? tokenise(id, piiKey) : null;
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
export class PredictionLog {
  /** Text to append per partition, in order; `lines` is how many lines each text holds. */
  private buffer: { partition: string; text: string; lines: number }[] = [];
  private bufferedLines = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  written = 0;
  dropped = 0;

  constructor(private readonly options: PredictionLogOptions) {
    this.timer = setInterval(() => void this.flush(), options.flushMs ?? 1000);
    this.timer.unref();
  }

  append(record: PredictionRecord, ts: number): boolean {
    return this.appendLine(partitionOf(ts), `${JSON.stringify(record)}\n`);
  }

  /** Queues a line already formatted (newline included) for its `dt=…/hr=…` partition. */
  appendLine(partition: string, line: string): boolean {
    return this.appendLines(partition, line, 1) === 1;
  }

  /**
   * Queues `count` formatted lines of one partition as one text (each line ends with a newline);
   * returns how many were kept. Past `maxBuffered` lines the rest are dropped and counted.
   */
  appendLines(partition: string, text: string, count: number): number {
    const room = (this.options.maxBuffered ?? 10_000) - this.bufferedLines;
    if (count <= room) {
      this.buffer.push({ partition, text, lines: count });
      this.bufferedLines += count;
      return count;
    }
    if (room <= 0) {
      this.dropped += count;
      return 0;
    }
    const lines = text.split(/(?<=\n)/);
    this.buffer.push({ partition, text: lines.slice(0, room).join(''), lines: room });
    this.bufferedLines += room;
    this.dropped += count - room;
    return room;
  }

  /** Counts lines lost before they reached the buffer (a formatter that failed). */
  countDropped(n: number): void {
    this.dropped += n;
  }

  /** Writes what is buffered; concurrent calls queue behind each other so lines keep their order. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writeBuffered());
    return this.flushing;
  }

  private async writeBuffered(): Promise<void> {
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.bufferedLines = 0;
    const byPartition = new Map<string, { texts: string[]; lines: number }>();
    for (const { partition, text, lines } of batch) {
      const p = byPartition.get(partition) ?? { texts: [], lines: 0 };
      p.texts.push(text);
      p.lines += lines;
      byPartition.set(partition, p);
    }
    for (const [partition, { texts, lines }] of byPartition) {
      const dir = path.join(this.options.dir, partition);
      try {
        await mkdir(dir, { recursive: true });
        await appendFile(path.join(dir, 'predictions.jsonl'), texts.join(''));
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
