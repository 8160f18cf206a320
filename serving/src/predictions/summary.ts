import { Worker } from 'node:worker_threads';

/** Served predictions of one hour file: what the summary route adds up. */
export interface HourTally {
  count: number;
  churned: number;
  sum: number;
  /** Served predictions per probability decile (0–0.1, …, 0.9–1). */
  histogram: number[];
}

export const emptyTally = (): HourTally => ({
  count: 0,
  churned: 0,
  sum: 0,
  histogram: new Array<number>(10).fill(0),
});

/**
 * Adds one log line to a tally: served lines with a numeric probability only (shadow lines and
 * unparsable lines are left out). Self-contained: the summary worker runs its source text.
 */
export function tallyLine(t: HourTally, line: string): void {
  if (!line) return;
  let r: { served?: boolean; probability?: number; label?: number };
  try {
    r = JSON.parse(line);
  } catch {
    return; // a line being written, or a damaged one
  }
  if (r === null || r.served !== true || typeof r.probability !== 'number') return;
  t.count += 1;
  t.churned += r.label === 1 ? 1 : 0;
  t.sum += r.probability;
  const bin = Math.min(9, Math.max(0, Math.floor(r.probability * 10)));
  t.histogram[bin] = (t.histogram[bin] ?? 0) + 1;
}

/**
 * The worker: tallies hour files read in 1 MiB slices (memory stays bounded whatever their size),
 * and remembers per file how far it read and what it counted, so a file that only grew is read from
 * where it stopped; a file that shrank or was replaced (`forget` rewrites them) is read afresh. Only
 * whole lines are taken: a line still being written is read next time. Self-contained.
 */
function summaryWorker(): void {
  const { parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const fs = require('node:fs') as typeof import('node:fs');
  type Tally = HourTally;
  const { tallyLine: tally, emptyTally: fresh } = globalThis as unknown as {
    tallyLine: typeof tallyLine;
    emptyTally: typeof emptyTally;
  };
  const SLICE = 1024 * 1024;
  const MAX_FILES = 400;
  const seen = new Map<string, { dev: number; ino: number; offset: number; tally: Tally }>();

  const read = (file: string): Tally => {
    let stat: import('node:fs').Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      seen.delete(file);
      return fresh();
    }
    let entry = seen.get(file);
    if (!entry || entry.dev !== stat.dev || entry.ino !== stat.ino || stat.size < entry.offset) {
      entry = { dev: stat.dev, ino: stat.ino, offset: 0, tally: fresh() };
    }
    seen.delete(file);
    seen.set(file, entry);
    if (seen.size > MAX_FILES) seen.delete(seen.keys().next().value as string);
    if (stat.size === entry.offset) return entry.tally;
    const fd = fs.openSync(file, 'r');
    try {
      // Bytes carried over from the last slice (the start of a line): a newline byte never occurs
      // inside a UTF-8 sequence, so only whole lines are decoded.
      let buf = Buffer.allocUnsafe(SLICE);
      let have = 0;
      for (;;) {
        if (have === buf.length) {
          const bigger = Buffer.allocUnsafe(buf.length * 2);
          buf.copy(bigger, 0, 0, have);
          buf = bigger;
        }
        const n = fs.readSync(fd, buf, have, buf.length - have, entry.offset + have);
        if (n === 0) break;
        const end = have + n;
        const last = buf.lastIndexOf(0x0a, end - 1);
        if (last === -1) {
          have = end;
          continue;
        }
        for (const line of buf.toString('utf8', 0, last).split('\n')) tally(entry.tally, line);
        entry.offset += last + 1;
        have = buf.copy(buf, 0, last + 1, end);
      }
    } finally {
      fs.closeSync(fd);
    }
    return entry.tally;
  };

  parentPort?.on('message', (msg: { id: number; files: string[] }) => {
    try {
      parentPort.postMessage({ id: msg.id, tallies: msg.files.map(read) });
    } catch (err) {
      parentPort.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) });
    }
  });
}

/**
 * Reads prediction log hour files off the event loop: one worker thread, started on first use and
 * kept (with what it has counted) until `close`. Requests queue behind each other in the worker.
 */
export class PredictionSummaryReader {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly waiting = new Map<
    number,
    { resolve: (t: HourTally[]) => void; reject: (err: Error) => void }
  >();

  tally(files: string[]): Promise<HourTally[]> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, files });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // esbuild (vitest) may wrap functions in `__name(...)`; the worker's source has no such helper.
    const source = `var __name = (f) => f;\nglobalThis.tallyLine = ${tallyLine.toString()};\nglobalThis.emptyTally = ${emptyTally.toString()};\n(${summaryWorker.toString()})();`;
    const worker = new Worker(source, { eval: true });
    worker.unref();
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    };
    worker.on('message', (msg: { id: number; tallies?: HourTally[]; error?: string }) => {
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      // Idle, the worker must not keep the process alive.
      if (this.waiting.size === 0) worker.unref();
      if (!w) return;
      if (msg.tallies) w.resolve(msg.tallies);
      else w.reject(new Error(`prediction summary: ${msg.error}`));
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`prediction summary: the reader exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }
}
