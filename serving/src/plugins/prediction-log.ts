import fp from 'fastify-plugin';
import { PredictionLines, type ServedForecast } from '../predictions/line.js';
import { PredictionLog } from '../predictions/log.js';
import type { ServedModel } from './model-registry.js';

declare module 'fastify' {
  interface FastifyInstance {
    recordPrediction(p: {
      model: ServedModel;
      row: Record<string, unknown>;
      /** The body text the row came from (index -1), or a batch body: `rows[index]` of `rows` rows. */
      source?: { body: string; index: number; rows?: number };
      probability: number;
      label: number;
      served: boolean;
      requestId: string;
      /** The A/B experiment and variant that answered (docs/experiments.md). */
      experiment?: { name: string; variant: string };
    }): void;
    /** Logs one forecast of a forecast dataset (not counted: the counters are per class label). */
    recordForecast(dataset: string, p: ServedForecast): void;
    predictionLog: PredictionLog | undefined;
  }
}

export interface PredictionLogPluginOptions {
  /** `<DRIFTWOOD_HOME>/predictions`; without it predictions are only counted, not logged. */
  dir?: string;
  /** The PII HMAC key; without it the customer id is left out of the log entirely. */
  piiKey?: string;
  /**
   * The dataset whose lines stay at `<dir>/dt=…/hr=…` (where the drift sidecar reads them); every
   * other dataset's go to `<dir>/dataset=<name>/dt=…/hr=…`.
   */
  defaultDataset?: string;
  /** Each dataset's id column, when not `customer_id`: tokenised, never logged as a feature. */
  idColumns?: Record<string, string>;
  /** See `PredictionLogOptions`: the timer, the size that starts a write, the memory bound. */
  flushMs?: number;
  flushBytes?: number;
  maxBufferedBytes?: number;
  spillDir?: string;
  now?: () => number;
}

type Labels = {
  dataset: string;
  model_name: string;
  model_version: string;
  alias: string;
  served: string;
  label: string;
};
type Tally = { labels: Labels; n: number };

/**
 * Counts every prediction per model version and label, and queues its line for the prediction log:
 * the line is formatted on the request path (about a microsecond: `PredictionLines`), and the log
 * appends the queued lines in batches, off it, and never drops one (`PredictionLog`).
 */
export const predictionLogPlugin = fp<PredictionLogPluginOptions>(
  async (app, opts) => {
    const now = opts.now ?? Date.now;
    // A line that cannot be formatted never reaches the log: counted with the failed writes.
    let formatErrors = 0;
    const onFormatError = (err: unknown) => {
      formatErrors++;
      app.log.error({ err }, 'prediction log: a line could not be formatted');
    };
    const log = opts.dir
      ? new PredictionLog({
          dir: opts.dir,
          flushMs: opts.flushMs,
          flushBytes: opts.flushBytes,
          maxBufferedBytes: opts.maxBufferedBytes,
          spillDir: opts.spillDir,
          now: opts.now,
          onWriteError: (err) => app.log.error({ err }, 'prediction log: write failed, retrying'),
        })
      : undefined;
    const writers = new Map<string, PredictionLines>();
    const linesOf = (dataset: string): PredictionLines => {
      let w = writers.get(dataset);
      if (!w) {
        const partitionPrefix = dataset === opts.defaultDataset ? '' : `dataset=${dataset}/`;
        w = new PredictionLines(opts.piiKey, {
          dataset,
          partitionPrefix,
          idColumn: opts.idColumns?.[dataset],
        });
        writers.set(dataset, w);
      }
      return w;
    };
    if (log && !opts.piiKey)
      app.log.warn('prediction log: DRIFTWOOD_PII_KEY is not set, so customer ids are left out of the log');
    // The four label sets of a served version (served or shadow × label 0 or 1), built once, each
    // with its count since the last scrape: a prediction adds one to a number, and the counter takes
    // the counts when it is read.
    const labelSets = new WeakMap<ServedModel['info'], Tally[]>();
    const tallies: Tally[] = [];
    const tallyOf = (info: ServedModel['info'], served: boolean, label: 0 | 1): Tally => {
      let sets = labelSets.get(info);
      if (!sets) {
        const base = {
          dataset: info.dataset,
          model_name: info.name,
          model_version: info.version,
          alias: info.alias,
        };
        sets = [false, true].flatMap((s) =>
          ['0', '1'].map((l) => ({ labels: { ...base, served: String(s), label: l }, n: 0 })),
        );
        labelSets.set(info, sets);
        tallies.push(...sets);
      }
      return sets[(served ? 2 : 0) + label] as Tally;
    };
    let errorsSeen = 0;
    const collectLog = () => {
      if (!log) return;
      app.metrics.predictionLogLagLines.set(log.lagLines);
      app.metrics.predictionLogLagSeconds.set(log.lagSeconds());
      const errors = log.writeErrors + formatErrors;
      if (errors > errorsSeen) app.metrics.predictionLogWriteErrors.inc(errors - errorsSeen);
      errorsSeen = errors;
    };
    app.metrics.onCollect(() => {
      for (const t of tallies)
        if (t.n > 0) {
          app.metrics.predictions.inc(t.labels, t.n);
          t.n = 0;
        }
      collectLog();
    });
    app.decorate('predictionLog', log);
    app.decorate('recordPrediction', (p) => {
      const { model, row, source, probability, label, served, requestId, experiment } = p;
      const { info } = model;
      if (label === 0 || label === 1) tallyOf(info, served, label).n++;
      else
        app.metrics.predictions.inc({
          dataset: info.dataset,
          model_name: info.name,
          model_version: info.version,
          alias: info.alias,
          served: String(served),
          label: String(label),
        });
      if (!log) return;
      let line: string;
      const lines = linesOf(info.dataset);
      try {
        const ts = now();
        line = lines.format({
          ts,
          requestId,
          model: info,
          served,
          probability,
          label,
          row,
          source,
          experiment,
        });
      } catch (err) {
        onFormatError(err);
        return;
      }
      log.appendLine(lines.partition, line);
    });
    app.decorate('recordForecast', (dataset: string, p: ServedForecast) => {
      if (!log) return;
      const lines = linesOf(dataset);
      let line: string;
      try {
        line = lines.formatForecast(p);
      } catch (err) {
        onFormatError(err);
        return;
      }
      log.appendLine(lines.partition, line);
    });
    app.addHook('onClose', async () => {
      // Shutdown waits until every accepted line is on disk.
      await log?.close();
      collectLog();
    });
  },
  { name: 'driftwood-prediction-log', dependencies: ['driftwood-metrics'] },
);
