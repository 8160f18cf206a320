import type { onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import { hooksOf } from './route-hooks.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false exempts a route from load shedding (health checks, metrics). */
    shed?: false;
  }
}

/**
 * Requests in flight, as the event loop sees them: those started and not yet answered, plus those
 * answered in the current turn of the loop. Node answers a quick request before it reads the next,
 * so "not yet answered" alone stays near 1 however many clients wait; the requests one turn handles
 * are the ones whose bytes queued in the kernel during the previous turn, so counting them is
 * counting the queue. Capping it caps how long an admitted request can have waited.
 */
export class InFlightGate {
  private pending = 0;
  private answeredThisTurn = 0;
  private turnEndScheduled = false;

  constructor(readonly max: number) {}

  /** Whether one more request may start now; it is counted when it may. */
  tryStart(): boolean {
    if (this.pending + this.answeredThisTurn >= this.max) return false;
    this.pending++;
    return true;
  }

  /** One started request was answered (or its connection closed). */
  finish(): void {
    this.pending--;
    this.answeredThisTurn++;
    if (!this.turnEndScheduled) {
      this.turnEndScheduled = true;
      // setImmediate runs right after the poll phase that is handling these requests.
      setImmediate(this.endTurn);
    }
  }

  get inFlight(): number {
    return this.pending + this.answeredThisTurn;
  }

  private readonly endTurn = () => {
    this.turnEndScheduled = false;
    this.answeredThisTurn = 0;
  };
}

export interface ShedLoadOptions {
  /** Requests in flight at most (see `InFlightGate`); 0 turns shedding off. */
  maxInFlight: number;
  /** Seconds a shed client is told to wait (`Retry-After`). */
  retryAfterSeconds?: number;
}

const SHED_BODY = JSON.stringify({
  error: 'overloaded',
  message: 'too many requests in flight; retry after the Retry-After delay',
});

/**
 * Sheds load before latency collapses: a request that finds `maxInFlight` requests in flight is
 * answered 503 `overloaded` with `Retry-After` at once, before auth, body parsing or scoring. A
 * route-level onRequest hook (register before auth), on every route unless `config.shed` is false.
 */
export const shedLoadPlugin = fp<ShedLoadOptions>(
  async (app, opts) => {
    if (!(opts.maxInFlight > 0)) return;
    const gate = new InFlightGate(opts.maxInFlight);
    const retryAfter = String(opts.retryAfterSeconds ?? 1);
    const shed = new Counter({
      name: 'driftwood_http_shed_total',
      help: 'Requests answered 503 at once because DRIFTWOOD_API_MAX_IN_FLIGHT requests were in flight',
      registers: [app.metrics.registry],
    });
    const finish = () => gate.finish();
    const admit: onRequestHookHandler = function admitOrShed(_req, reply, done) {
      if (gate.tryStart()) {
        reply.raw.once('close', finish);
        return done();
      }
      shed.inc();
      reply
        .code(503)
        .header('retry-after', retryAfter)
        .header('content-type', 'application/json; charset=utf-8')
        .send(SHED_BODY);
    };
    app.addHook('onRoute', (route) => {
      if (route.config?.shed !== false) route.onRequest = [admit, ...hooksOf(route.onRequest)];
    });
  },
  { name: 'driftwood-shed-load', dependencies: ['driftwood-metrics'] },
);
