import type { onResponseHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { LatencyHistogram, type LatencySeries } from './latency-histogram.js';
import { hooksOf } from './route-hooks.js';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ApiMetrics;
  }
}

export interface ApiMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status_code'>;
  latency: LatencyHistogram;
  errors: Counter<'status_code'>;
  predictions: Counter<'dataset' | 'model_name' | 'model_version' | 'alias' | 'served' | 'label'>;
  modelLoads: Counter<'dataset' | 'alias' | 'version' | 'outcome'>;
  servedVersion: Gauge<'dataset' | 'alias' | 'version'>;
  /** Prediction log lines accepted and not yet on disk, and the age of the oldest of them. */
  predictionLogLagLines: Gauge;
  predictionLogLagSeconds: Gauge;
  /** Failed prediction log writes (each is retried; no line is dropped). */
  predictionLogWriteErrors: Counter;
  canaryRollbacks: Counter<'dataset' | 'version'>;
  /** Adds counts kept outside prom-client to the counters before they are read. */
  onCollect(flush: () => void): void;
}

interface RouteMeter {
  labels: { method: string; route: string };
  /** Latency counts for these labels, observed without label hashing. */
  latency: LatencySeries;
  /** Responses since the last scrape, by status code. */
  byStatus: Map<number, number>;
}

/**
 * Prometheus metrics on a registry of the app's own (two apps in one process do not mix their
 * counts). Routes are labelled by their pattern, never the raw URL, so label cardinality is bounded.
 */
export const metricsPlugin = fp<{ defaultMetrics?: boolean }>(
  async (app, opts) => {
    const registry = new Registry();
    // Counts kept in plain Maps on the request path, handed to the counters when they are read.
    const flushers: (() => void)[] = [];
    const collect = () => {
      for (const flush of flushers) flush();
    };
    if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'driftwood_api_' });
    const metrics: ApiMetrics = {
      registry,
      requests: new Counter({
        name: 'driftwood_http_requests_total',
        help: 'HTTP requests answered, by method, route pattern and status code',
        collect,
        labelNames: ['method', 'route', 'status_code'],
        registers: [registry],
      }),
      latency: new LatencyHistogram({
        name: 'driftwood_http_request_duration_seconds',
        help: 'Time from request to response, by method and route pattern',
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers: [registry],
      }),
      errors: new Counter({
        name: 'driftwood_http_errors_total',
        help: 'Responses with a 4xx or 5xx status, by status code',
        collect,
        labelNames: ['status_code'],
        registers: [registry],
      }),
      predictions: new Counter({
        name: 'driftwood_predictions_total',
        help: 'Predictions made, by dataset, model version, alias, whether returned (served) or shadow, and label',
        collect,
        labelNames: ['dataset', 'model_name', 'model_version', 'alias', 'served', 'label'],
        registers: [registry],
      }),
      modelLoads: new Counter({
        name: 'driftwood_model_loads_total',
        help: 'Model load attempts from the registry, by dataset, alias, version and outcome (success or failure)',
        labelNames: ['dataset', 'alias', 'version', 'outcome'],
        registers: [registry],
      }),
      servedVersion: new Gauge({
        name: 'driftwood_model_served',
        help: '1 for the model version serving each alias of each dataset',
        labelNames: ['dataset', 'alias', 'version'],
        // In a cluster every worker reports its own; a version any worker serves shows as 1.
        aggregator: 'max',
        registers: [registry],
      }),
      canaryRollbacks: new Counter({
        name: 'driftwood_canary_rollbacks_total',
        help: 'Canary splits rolled back because the challenger version failed or was too slow',
        labelNames: ['dataset', 'version'],
        registers: [registry],
      }),
      predictionLogLagLines: new Gauge({
        name: 'driftwood_prediction_log_lag_lines',
        help: 'Prediction log lines accepted and not yet on disk (in memory, being written or spilled)',
        collect,
        registers: [registry],
      }),
      predictionLogLagSeconds: new Gauge({
        name: 'driftwood_prediction_log_lag_seconds',
        help: 'Age of the oldest prediction log line not yet on disk (0 when the log is caught up)',
        collect,
        aggregator: 'max',
        registers: [registry],
      }),
      predictionLogWriteErrors: new Counter({
        name: 'driftwood_prediction_log_write_errors_total',
        help: 'Failed prediction log writes; each is retried, no line is dropped',
        collect,
        registers: [registry],
      }),
      onCollect: (flush) => flushers.push(flush),
    };
    app.decorate('metrics', metrics);
    // Fastify times every request from routing to the last byte (reply.elapsedTime), so no hook of
    // our own is needed at the start. At the end, each route's own onResponse hook counts into a
    // plain Map per status code and its latency into the route's own histogram series (no label
    // hashing per request); the counters take those counts when scraped. Unknown URLs are counted by
    // a global hook as route `unmatched`.
    const meters: RouteMeter[] = [];
    const meterFor = (method: string, route: string): RouteMeter => {
      const m: RouteMeter = {
        labels: { method, route },
        latency: metrics.latency.series(method, route),
        byStatus: new Map(),
      };
      meters.push(m);
      return m;
    };
    const errors = new Map<number, number>();
    const count = (m: RouteMeter, code: number, seconds: number) => {
      m.byStatus.set(code, (m.byStatus.get(code) ?? 0) + 1);
      m.latency.observe(seconds);
      if (code >= 400) errors.set(code, (errors.get(code) ?? 0) + 1);
    };
    flushers.push(() => {
      for (const m of meters) {
        for (const [code, n] of m.byStatus)
          metrics.requests.inc({ ...m.labels, status_code: String(code) }, n);
        m.byStatus.clear();
      }
      for (const [code, n] of errors) metrics.errors.inc({ status_code: String(code) }, n);
      errors.clear();
    });
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const byMethod = new Map(methods.map((method) => [method, meterFor(method, route.url)]));
      const one = byMethod.size === 1 ? (byMethod.values().next().value as RouteMeter) : undefined;
      const countRoute: onResponseHookHandler = function countRoute(req, reply, done) {
        const m = one ?? byMethod.get(req.method) ?? meterFor(req.method, route.url);
        count(m, reply.statusCode, reply.elapsedTime / 1000);
        done();
      };
      route.onResponse = [...hooksOf(route.onResponse), countRoute];
    });
    const unmatched = new Map<string, RouteMeter>();
    app.addHook('onResponse', (req, reply, done) => {
      if (req.is404) {
        let m = unmatched.get(req.method);
        if (!m) {
          m = meterFor(req.method, 'unmatched');
          unmatched.set(req.method, m);
        }
        count(m, reply.statusCode, reply.elapsedTime / 1000);
      }
      done();
    });
  },
  { name: 'driftwood-metrics' },
);
