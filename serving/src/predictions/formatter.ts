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

/** What goes to the worker: columns, with each body and model sent once however many rows share it. */
interface Chunk {
  ts: number[];
  ids: string[];
  served: boolean[];
  probability: number[];
  label: number[];
  modelRef: number[];
  models: { name: string; version: string; alias: string }[];
  bodyRef: number[];
  bodies: string[];
  index: number[];
}

interface Formatted {
  partitions: string[];
  lines: string[];
  failed: number;
  error: string | undefined;
}

const emptyChunk = (): Chunk => ({
  ts: [],
  ids: [],
  served: [],
  probability: [],
  label: [],
  modelRef: [],
  models: [],
  bodyRef: [],
  bodies: [],
  index: [],
});

/**
 * The worker: parses each body, drops the customer id, tokenises it and formats the line exactly as
 * `PredictionLog.append` would. It is started from this function's source text, so it must not use
 * anything from the module around it; the main thread checks its tokens against `tokenise`.
 */
function formatterWorker(): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const { createHmac } = require('node:crypto') as typeof import('node:crypto');
  const { piiKey, probe } = workerData as { piiKey: string | undefined; probe: [string, string] | undefined };
  const token = (id: string) =>
    createHmac('sha256', piiKey as string)
      .update(id.trim().toLowerCase())
      .digest('hex')
      .slice(0, 32);
  if (probe && token(probe[0]) !== probe[1])
    throw new Error('the log formatter tokenises customer ids differently from tokenise()');
  parentPort?.on('message', (c: Chunk) => {
    const out: Formatted = { partitions: [], lines: [], failed: 0, error: undefined };
    let parsedRef = -1;
    let parsed: unknown;
    for (let i = 0; i < c.ts.length; i++) {
      try {
        const ref = c.bodyRef[i] as number;
        if (ref !== parsedRef) {
          parsed = JSON.parse(c.bodies[ref] as string);
          parsedRef = ref;
        }
        const at = c.index[i] as number;
        const row = (at < 0 ? parsed : (parsed as { rows: unknown[] }).rows[at]) as Record<string, unknown>;
        const { customer_id: id, ...features } = row;
        const ts = new Date(c.ts[i] as number).toISOString();
        const m = c.models[c.modelRef[i] as number] as Chunk['models'][number];
        const record = {
          ts,
          request_id: c.ids[i],
          model: { name: m.name, version: m.version, alias: m.alias },
          served: c.served[i],
          customer_token: typeof id === 'string' && piiKey ? token(id) : null,
          features,
          probability: c.probability[i],
          label: c.label[i],
        };
        out.lines.push(`${JSON.stringify(record)}\n`);
        out.partitions.push(`dt=${ts.slice(0, 10)}/hr=${ts.slice(11, 13)}`);
      } catch (err) {
        out.failed++;
        out.error = (err as Error).message;
        parsedRef = -1;
      }
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
  private chunk = emptyChunk();
  private lastBody: string | undefined;
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
    if (c.ts.length + this.inFlight >= (this.options.maxPending ?? 10_000)) {
      this.log.countDropped(1);
      return false;
    }
    if (p.body !== this.lastBody || c.bodies.length === 0) {
      c.bodies.push(p.body);
      this.lastBody = p.body;
    }
    if (p.model !== this.lastModel || c.models.length === 0) {
      c.models.push(p.model);
      this.lastModel = p.model;
    }
    c.ts.push(p.ts);
    c.ids.push(p.requestId);
    c.served.push(p.served);
    c.probability.push(p.probability);
    c.label.push(p.label);
    c.modelRef.push(c.models.length - 1);
    c.bodyRef.push(c.bodies.length - 1);
    c.index.push(p.index);
    if (c.ts.length >= (this.options.chunkSize ?? 512)) this.post();
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
    if (c.ts.length === 0 || !this.worker) return;
    this.chunk = emptyChunk();
    this.lastBody = undefined;
    this.lastModel = undefined;
    this.sent.push(c.ts.length);
    this.inFlight += c.ts.length;
    this.worker.postMessage(c);
  }

  private receive(out: Formatted): void {
    for (let i = 0; i < out.lines.length; i++)
      this.log.appendLine(out.partitions[i] as string, out.lines[i] as string);
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
    this.chunk = emptyChunk();
    for (let i = 0; i < c.ts.length; i++)
      this.formatHere({
        ts: c.ts[i] as number,
        requestId: c.ids[i] as string,
        model: c.models[c.modelRef[i] as number] as PendingPrediction['model'],
        served: c.served[i] as boolean,
        probability: c.probability[i] as number,
        label: c.label[i] as number,
        body: c.bodies[c.bodyRef[i] as number] as string,
        index: c.index[i] as number,
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
