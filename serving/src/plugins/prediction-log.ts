import fp from 'fastify-plugin';
import { customerToken, loggableFeatures, PredictionLog } from '../predictions/log.js';
import type { ServedModel } from './model-registry.js';

declare module 'fastify' {
  interface FastifyInstance {
    recordPrediction(p: {
      model: ServedModel;
      row: Record<string, unknown>;
      probability: number;
      label: number;
      served: boolean;
      requestId: string;
    }): void;
    predictionLog: PredictionLog | undefined;
  }
}

export interface PredictionLogPluginOptions {
  /** `<DRIFTWOOD_HOME>/predictions`; without it predictions are only counted, not logged. */
  dir?: string;
  /** The PII HMAC key; without it the customer id is left out of the log entirely. */
  piiKey?: string;
  maxBuffered?: number;
  flushMs?: number;
  now?: () => number;
}

/** Counts every prediction per model version and label, and queues it for the prediction log. */
export const predictionLogPlugin = fp<PredictionLogPluginOptions>(
  async (app, opts) => {
    const now = opts.now ?? Date.now;
    const log = opts.dir
      ? new PredictionLog({
          dir: opts.dir,
          maxBuffered: opts.maxBuffered,
          flushMs: opts.flushMs,
          onFlushError: (err) => app.log.error({ err }, 'prediction log: write failed; lines dropped'),
        })
      : undefined;
    if (log && !opts.piiKey)
      app.log.warn('prediction log: DRIFTWOOD_PII_KEY is not set, so customer ids are left out of the log');
    let droppedSeen = 0;
    app.decorate('predictionLog', log);
    app.decorate('recordPrediction', ({ model, row, probability, label, served, requestId }) => {
      const { name, version, alias } = model.info;
      app.metrics.predictions.inc({
        model_name: name,
        model_version: version,
        alias,
        served: String(served),
        label: String(label),
      });
      if (!log) return;
      const ts = now();
      log.append(
        {
          ts: new Date(ts).toISOString(),
          request_id: requestId,
          model: { name, version, alias },
          served,
          customer_token: customerToken(row, opts.piiKey),
          features: loggableFeatures(row),
          probability,
          label,
        },
        ts,
      );
      if (log.dropped > droppedSeen) {
        app.metrics.predictionLogDropped.inc(log.dropped - droppedSeen);
        droppedSeen = log.dropped;
      }
    });
    app.addHook('onClose', async () => {
      await log?.close();
      if (log && log.dropped > droppedSeen) app.metrics.predictionLogDropped.inc(log.dropped - droppedSeen);
    });
  },
  { name: 'driftwood-prediction-log', dependencies: ['driftwood-metrics'] },
);
