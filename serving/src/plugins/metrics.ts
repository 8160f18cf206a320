import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ApiMetrics;
  }
}

export interface ApiMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status_code'>;
  latency: Histogram<'method' | 'route'>;
  errors: Counter<'status_code'>;
  predictions: Counter<'model_name' | 'model_version' | 'alias' | 'served' | 'label'>;
  modelLoads: Counter<'alias' | 'version' | 'outcome'>;
  servedVersion: Gauge<'alias' | 'version'>;
  predictionLogDropped: Counter;
  canaryRollbacks: Counter<'version'>;
}

/**
 * Prometheus metrics on a registry of the app's own (two apps in one process do not mix their
 * counts). Routes are labelled by their pattern, never the raw URL, so label cardinality is bounded.
 */
export const metricsPlugin = fp<{ defaultMetrics?: boolean }>(
  async (app, opts) => {
    const registry = new Registry();
    if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'driftwood_api_' });
    const metrics: ApiMetrics = {
      registry,
      requests: new Counter({
        name: 'driftwood_http_requests_total',
        help: 'HTTP requests answered, by method, route pattern and status code',
        labelNames: ['method', 'route', 'status_code'],
        registers: [registry],
      }),
      latency: new Histogram({
        name: 'driftwood_http_request_duration_seconds',
        help: 'Time from request to response, by method and route pattern',
        labelNames: ['method', 'route'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers: [registry],
      }),
      errors: new Counter({
        name: 'driftwood_http_errors_total',
        help: 'Responses with a 4xx or 5xx status, by status code',
        labelNames: ['status_code'],
        registers: [registry],
      }),
      predictions: new Counter({
        name: 'driftwood_predictions_total',
        help: 'Predictions made, by model version, alias, whether returned (served) or shadow, and label',
        labelNames: ['model_name', 'model_version', 'alias', 'served', 'label'],
        registers: [registry],
      }),
      modelLoads: new Counter({
        name: 'driftwood_model_loads_total',
        help: 'Model load attempts from the registry, by alias, version and outcome (success or failure)',
        labelNames: ['alias', 'version', 'outcome'],
        registers: [registry],
      }),
      servedVersion: new Gauge({
        name: 'driftwood_model_served',
        help: '1 for the model version serving each alias',
        labelNames: ['alias', 'version'],
        registers: [registry],
      }),
      canaryRollbacks: new Counter({
        name: 'driftwood_canary_rollbacks_total',
        help: 'Canary splits rolled back because the challenger version failed or was too slow',
        labelNames: ['version'],
        registers: [registry],
      }),
      predictionLogDropped: new Counter({
        name: 'driftwood_prediction_log_dropped_total',
        help: 'Prediction log lines dropped because the buffer was full or the disk failed',
        registers: [registry],
      }),
    };
    app.decorate('metrics', metrics);
    // Fastify times every request from routing to the last byte (reply.elapsedTime), so no hook of
    // our own is needed at the start; one callback hook at the end counts and times the request.
    app.addHook('onResponse', (req, reply, done) => {
      const method = req.method;
      const route = req.routeOptions.url ?? 'unmatched';
      const code = reply.statusCode;
      const status = String(code);
      metrics.requests.inc({ method, route, status_code: status });
      metrics.latency.observe({ method, route }, reply.elapsedTime / 1000);
      if (code >= 400) metrics.errors.inc({ status_code: status });
      done();
    });
  },
  { name: 'driftwood-metrics' },
);
