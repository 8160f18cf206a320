import { Worker } from 'node:worker_threads';
import { tokenise } from '@driftwood/tasks';
import { customerToken, loggableFeatures, type PredictionLog } from './log.js';

/** One prediction to log, as the request path hands it over: nothing parsed, hashed or formatted yet. */
export interface PendingPrediction {
  ts: number;
  requestId: string;
  /** Only name, version and alias are logged; the same object for every prediction of a version. */
  model: { name: string; version: string; alias: string };
  served: boolean;
  probability: number;
  label: number;
  /** The request body's JSON text, as received (validated), and for a batch the row's index in `rows`. */
  body: string;
  /** -1 when the body is the row itself. */
  index: number;
}

/**
 * What goes to the worker: the numbers in one Float64Array of columns (transferred, not copied) and
 * the strings (each body once however many rows share it, and the request ids) as one text with
 * their end offsets, so a message is a few flat copies rather than a clone of thousands of values.
 */
interface Message {
  n: number;
  /** `COLUMNS` columns of `n` rows each. */
  nums: Float64Array;
  text: string;
  ends: Int32Array;
  models: { name: string; version: string; alias: string }[];
}

/** The worker's answer: per partition, its lines as one text and how many they are. */
interface Formatted {
  partitions: string[];
  texts: string[];
  counts: number[];
  failed: number;
  error: string | undefined;
}

/** Column order in `Message.nums`; bodies and ids are indexes into the strings. */
const TS = 0;
const PROBABILITY = 1;
const LABEL = 2;
const SERVED = 3;
const INDEX = 4;
const MODEL = 5;
const BODY = 6;
const ID = 7;
const COLUMNS = 8;

/** The predictions queued on the request path, not yet sent. */
class Chunk {
  n = 0;
  readonly nums: Float64Array;
  readonly strings: string[] = [];
  readonly models: Message['models'] = [];

  constructor(readonly capacity: number) {
    this.nums = new Float64Array(capacity * COLUMNS);
  }

  at(column: number, row: number): number {
    return this.nums[column * this.capacity + row] as number;
  }

  toMessage(): { message: Message; transfer: ArrayBuffer[] } {
    const nums = this.n === this.capacity ? this.nums : new Float64Array(this.n * COLUMNS);
    if (nums !== this.nums)
      for (let c = 0; c < COLUMNS; c++)
        nums.set(this.nums.subarray(c * this.capacity, c * this.capacity + this.n), c * this.n);
    const ends = new Int32Array(this.strings.length);
    let end = 0;
    for (let i = 0; i < this.strings.length; i++) {
      end += (this.strings[i] as string).length;
      ends[i] = end;
    }
    const message = { n: this.n, nums, text: this.strings.join(''), ends, models: this.models };
    return { message, transfer: [nums.buffer as ArrayBuffer, ends.buffer as ArrayBuffer] };
  }
}

/**
 * The worker: parses each body, drops the customer id, tokenises it and formats the line exactly as
 * `PredictionLog.append` would. It is started from this function's source text, so it must not use
 * anything from the module around it; the main thread checks its tokens against `tokenise`.
 */
function formatterWorker(): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const { createHmac } = require('node:crypto') as typeof import('node:crypto');
  const { piiKey, probe } = workerData as { piiKey: string | undefined; probe: [string, string] | undefined };
  const hmac = (id: string) =>
    createHmac('sha256', piiKey as string)
      .update(id.trim().toLowerCase())
      .digest('hex')
      .slice(0, 32);
  // The same customers come back: their tokens are remembered (at most 50 000, then forgotten all
  // at once), which spares an HMAC for most lines. The cache lives in this thread only.
  const tokens = new Map<string, string>();
  const token = (id: string) => {
    let t = tokens.get(id);
    if (t === undefined) {
      if (tokens.size >= 50_000) tokens.clear();
      t = hmac(id);
      tokens.set(id, t);
    }
    return t;
  };
  if (probe && hmac(probe[0]) !== probe[1])
    throw new Error('the log formatter tokenises customer ids differently from tokenise()');
  parentPort?.on('message', (m: Message) => {
    const out: Formatted = { partitions: [], texts: [], counts: [], failed: 0, error: undefined };
    const n = m.n;
    let text = '';
    let count = 0;
    let partition = '';
    const num = (column: number, row: number) => m.nums[column * n + row] as number;
    const str = (i: number) => m.text.slice(i === 0 ? 0 : (m.ends[i - 1] as number), m.ends[i] as number);
    let parsedRef = -1;
    let parsed: unknown;
    for (let i = 0; i < n; i++) {
      try {
        const ref = num(6, i);
        if (ref !== parsedRef) {
          parsed = JSON.parse(str(ref));
          parsedRef = ref;
        }
        const at = num(4, i);
        const row = (at < 0 ? parsed : (parsed as { rows: unknown[] }).rows[at]) as Record<string, unknown>;
        const { customer_id: id, ...features } = row;
        const ts = new Date(num(0, i)).toISOString();
        const model = m.models[num(5, i)] as Message['models'][number];
        const record = {
          ts,
          request_id: str(num(7, i)),
          model: { name: model.name, version: model.version, alias: model.alias },
          served: num(3, i) === 1,
          customer_token: typeof id === 'string' && piiKey ? token(id) : null,
          features,
          probability: num(1, i),
          label: num(2, i),
        };
        const line = `${JSON.stringify(record)}\n`;
        const p = `dt=${ts.slice(0, 10)}/hr=${ts.slice(11, 13)}`;
        if (p !== partition && count > 0) {
          out.partitions.push(partition);
          out.texts.push(text);
          out.counts.push(count);
          text = '';
          count = 0;
        }
        partition = p;
        text += line;
        count++;
      } catch (err) {
        out.failed++;
        out.error = (err as Error).message;
        parsedRef = -1;
      }
    }
    if (count > 0) {
      out.partitions.push(partition);
      out.texts.push(text);
      out.counts.push(count);
    }
    parentPort.postMessage(out);
  });
}

export interface PredictionFormatterOptions {
  piiKey?: string;
  /** Predictions queued or being formatted at most; past it they are dropped and counted. */
  maxPending?: number;
  /** How often queued predictions go to the worker (also when `chunkSize` are queued). */
  postMs?: number;
  chunkSize?: number;
  onError: (err: unknown) => void;
}

/**
 * Formats prediction log lines on a worker thread and hands them to the log. On the request path a
 * prediction costs a few array pushes; parsing, PII tokenising and JSON formatting (together several
 * times the cost of scoring) run beside the event loop. If the worker fails, lines are formatted in
 * the event loop instead, and lines lost with it are counted as dropped.
 */
export class PredictionFormatter {
  private worker: Worker | undefined;
  private readonly chunkSize: number;
  private chunk: Chunk;
  private lastBody: string | undefined;
  private lastBodyRef = 0;
  private lastModel: object | undefined;
  /** Chunks sent to the worker and not answered yet, oldest first (their sizes). */
  private sent: number[] = [];
  private inFlight = 0;
  private idle: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: PredictionLog,
    private readonly options: PredictionFormatterOptions,
  ) {
    const probe: [string, string] | undefined = options.piiKey
      ? ['Probe-Customer-1', tokenise('Probe-Customer-1', options.piiKey)]
      : undefined;
    // `__name` is what a bundler's keep-names helper would call inside the function's source.
    this.chunkSize = options.chunkSize ?? 512;
    this.chunk = new Chunk(this.chunkSize);
    this.worker = new Worker(`var __name = (f) => f;\n(${formatterWorker.toString()})();`, {
      eval: true,
      workerData: { piiKey: options.piiKey, probe },
    });
    this.worker.unref();
    this.worker.on('message', (out: Formatted) => this.receive(out));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (this.worker) this.fail(new Error(`the log formatter exited with code ${code}`));
    });
    this.timer = setInterval(() => this.post(), options.postMs ?? 100);
    this.timer.unref();
  }

  /** Queues one prediction; false when it was dropped (queue full). */
  enqueue(p: PendingPrediction): boolean {
    if (!this.worker) return this.formatHere(p);
    const c = this.chunk;
    if (c.n + this.inFlight >= (this.options.maxPending ?? 10_000)) {
      this.log.countDropped(1);
      return false;
    }
    if (p.body !== this.lastBody || c.n === 0) {
      this.lastBodyRef = c.strings.push(p.body) - 1;
      this.lastBody = p.body;
    }
    if (p.model !== this.lastModel || c.n === 0) {
      c.models.push(p.model);
      this.lastModel = p.model;
    }
    const row = c.n++;
    const cap = c.capacity;
    const nums = c.nums;
    nums[TS * cap + row] = p.ts;
    nums[PROBABILITY * cap + row] = p.probability;
    nums[LABEL * cap + row] = p.label;
    nums[SERVED * cap + row] = p.served ? 1 : 0;
    nums[INDEX * cap + row] = p.index;
    nums[MODEL * cap + row] = c.models.length - 1;
    nums[BODY * cap + row] = this.lastBodyRef;
    nums[ID * cap + row] = c.strings.push(p.requestId) - 1;
    if (c.n >= cap) this.post();
    return true;
  }

  /** Resolves once everything queued so far is formatted and in the log's buffer. */
  drain(): Promise<void> {
    this.post();
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.drain();
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private post(): void {
    const c = this.chunk;
    if (c.n === 0 || !this.worker) return;
    this.chunk = new Chunk(this.chunkSize);
    this.lastBody = undefined;
    this.lastModel = undefined;
    this.sent.push(c.n);
    this.inFlight += c.n;
    const { message, transfer } = c.toMessage();
    this.worker.postMessage(message, transfer);
  }

  private receive(out: Formatted): void {
    for (let i = 0; i < out.texts.length; i++)
      this.log.appendLines(out.partitions[i] as string, out.texts[i] as string, out.counts[i] as number);
    if (out.failed > 0) {
      this.log.countDropped(out.failed);
      this.options.onError(new Error(`${out.failed} prediction log line(s) not formatted: ${out.error}`));
    }
    this.inFlight -= this.sent.shift() ?? 0;
    if (this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  private fail(err: unknown): void {
    if (!this.worker) return;
    this.worker = undefined;
    this.options.onError(err);
    // What the worker held is lost; what is still queued here is formatted in the event loop.
    this.log.countDropped(this.inFlight);
    this.inFlight = 0;
    this.sent = [];
    const c = this.chunk;
    this.chunk = new Chunk(this.chunkSize);
    for (let i = 0; i < c.n; i++)
      this.formatHere({
        ts: c.at(TS, i),
        requestId: c.strings[c.at(ID, i)] as string,
        model: c.models[c.at(MODEL, i)] as PendingPrediction['model'],
        served: c.at(SERVED, i) === 1,
        probability: c.at(PROBABILITY, i),
        label: c.at(LABEL, i),
        body: c.strings[c.at(BODY, i)] as string,
        index: c.at(INDEX, i),
      });
    for (const resolve of this.idle.splice(0)) resolve();
  }

  private formatHere(p: PendingPrediction): boolean {
    let row: Record<string, unknown>;
    try {
      const parsed = JSON.parse(p.body) as Record<string, unknown> & { rows: Record<string, unknown>[] };
      row = p.index < 0 ? parsed : (parsed.rows[p.index] as Record<string, unknown>);
    } catch (err) {
      this.log.countDropped(1);
      this.options.onError(err);
      return false;
    }
    const { name, version, alias } = p.model;
    return this.log.append(
      {
        ts: new Date(p.ts).toISOString(),
        request_id: p.requestId,
        model: { name, version, alias },
        served: p.served,
        customer_token: customerToken(row, this.options.piiKey),
        features: loggableFeatures(row),
        probability: p.probability,
        label: p.label,
      },
      p.ts,
    );
  }
}
