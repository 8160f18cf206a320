import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '@driftwood/tasks';
import { AggregatorRegistry, type Registry } from 'prom-client';

/**
 * Several API processes on one port (node:cluster): the primary forks the workers, restarts one
 * that dies, relays what one worker must tell the others, and stops them all with grace. Each worker
 * is a whole API (its own model, metrics, prediction log appends, rate limit); what must be seen as
 * one goes through the primary:
 * - `/metrics` on any worker answers with every worker's registry, summed (prom-client's
 *   AggregatorRegistry, which asks each worker for its metrics);
 * - a registry refresh asked of one worker (the MLflow webhook, the admin routes) is announced to
 *   the others, which read the registry too, so none waits for its next poll.
 */

const METRICS = 'driftwood:metrics';
const REFRESH = 'driftwood:refresh';

type Message = { type: typeof METRICS; id: number; text?: string; error?: string } | { type: typeof REFRESH };

const isMessage = (m: unknown): m is Message =>
  typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';

/** What a worker's app needs of the other workers. */
export interface PeerLink {
  /** Prometheus text of every worker's registry, summed. */
  metrics(): Promise<string>;
  /** Tells the other workers to read the model registry now. */
  announceRefresh(): void;
  /** Calls `listener` when another worker announced a refresh. */
  onRefresh(listener: () => void): void;
  /** Answers the primary's requests for this worker's metrics from `registry`. */
  shareMetrics(registry: Registry): void;
}

/** The link of this worker process to the others, through the primary. */
export function workerLink(timeoutMs = 5_000): PeerLink {
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  const refreshListeners: (() => void)[] = [];
  let next = 0;
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    if (m.type === REFRESH) for (const listener of refreshListeners) listener();
    else if (m.type === METRICS) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.text ?? '');
    }
  });
  return {
    metrics: () =>
      new Promise((resolve, reject) => {
        const id = next++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`the other API processes did not send their metrics within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (text) => {
            clearTimeout(timer);
            resolve(text);
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err);
          },
        });
        process.send?.({ type: METRICS, id } satisfies Message);
      }),
    announceRefresh: () => process.send?.({ type: REFRESH } satisfies Message),
    onRefresh: (listener) => refreshListeners.push(listener),
    shareMetrics: (registry) => {
      // Constructing one installs prom-client's listener for the primary's metric requests.
      new AggregatorRegistry();
      AggregatorRegistry.setRegistries([registry]);
    },
  };
}

/** Unexpected worker deaths tolerated within a minute before the primary gives up. */
const MAX_RESTARTS_PER_MINUTE = 5;

/**
 * Runs the primary: forks `workers` API processes (this same command), resolves once all listen,
 * and on SIGTERM/SIGINT stops them with grace, exiting 0 when they all did within `graceMs`.
 */
export async function runPrimary(opts: {
  workers: number;
  log: Logger;
  graceMs?: number;
}): Promise<{ url: string; close: () => Promise<void> }> {
  const { workers, log } = opts;
  const aggregator = new AggregatorRegistry();
  let closing = false;
  /** Whether a worker stopped with an error or a signal during shutdown. */
  let unclean = false;
  const deaths: number[] = [];
  /** Workers that have listened: only they can have had requests in flight. */
  const listeners = new WeakSet<Worker>();

  cluster.on('message', (worker: Worker, m: unknown) => {
    if (!isMessage(m)) return;
    if (m.type === REFRESH) {
      for (const other of Object.values(cluster.workers ?? {}))
        if (other && other !== worker && other.isConnected()) other.send({ type: REFRESH } satisfies Message);
    } else if (m.type === METRICS) {
      aggregator.clusterMetrics().then(
        (text) => worker.isConnected() && worker.send({ type: METRICS, id: m.id, text } satisfies Message),
        (err: Error) =>
          worker.isConnected() &&
          worker.send({ type: METRICS, id: m.id, error: err.message } satisfies Message),
      );
    }
  });

  const exited = new Promise<void>((resolveAll) => {
    cluster.on('exit', (worker, code, signal) => {
      const alive = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead()).length;
      if (closing) {
        // A worker stopped before it listened had nothing in flight.
        if (code !== 0 && listeners.has(worker)) {
          unclean = true;
          log.error({ worker: worker.process.pid, code, signal }, 'serve: a worker did not stop cleanly');
        }
        if (alive === 0) resolveAll();
        return;
      }
      // Exit 2 before listening is a configuration error (a port in use, a bad setting): every new
      // worker would fail the same way, so stop with it instead of restarting.
      if (code === 2 && !listeners.has(worker)) {
        log.fatal(
          { worker: worker.process.pid },
          'serve: a worker could not start (see its error above); stopping',
        );
        void close().then(() => process.exit(2));
        return;
      }
      const now = Date.now();
      deaths.push(now);
      while ((deaths[0] ?? now) < now - 60_000) deaths.shift();
      log.error({ worker: worker.process.pid, code, signal }, 'serve: a worker died; starting another');
      if (deaths.length > MAX_RESTARTS_PER_MINUTE) {
        log.fatal({ deaths: deaths.length }, 'serve: workers keep dying; stopping');
        void close().then(() => process.exit(1));
        return;
      }
      setTimeout(() => !closing && cluster.fork(), 1_000).unref();
    });
  });

  const graceMs = opts.graceMs ?? 10_000;
  const close = async () => {
    if (closing) return exited;
    closing = true;
    const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
    for (const w of live) w.process.kill('SIGTERM');
    if (live.length === 0) return;
    const timer = setTimeout(() => {
      log.error('serve: workers did not stop within the grace period; killing them');
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(timer);
  };
  const onSignal = (signal: string) => {
    log.info({ signal }, 'serve: shutting down the workers, finishing in-flight requests');
    close().then(
      () => process.exit(unclean ? 1 : 0),
      () => process.exit(1),
    );
  };
  // Before the workers are forked: a signal during start-up stops them too, rather than killing
  // the primary and leaving them behind.
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  let url = '';
  const listening = new Promise<void>((resolve) => {
    let count = 0;
    cluster.on('listening', (worker, address) => {
      listeners.add(worker);
      url ||= `http://${address.address ?? '127.0.0.1'}:${address.port}`;
      if (++count === workers) resolve();
    });
  });
  for (let i = 0; i < workers; i++) cluster.fork();
  await listening;
  log.info({ url, workers }, 'serve: all workers listening');

  return { url, close };
}
