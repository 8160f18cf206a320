import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { partitionOf } from '../predictions/log.js';
import { emptyTally, type HourTally, PredictionSummaryReader, tallyLine } from '../predictions/summary.js';
import { errorResponses } from '../schemas.js';

export interface PredictionSummaryRoutesOptions {
  /** The default dataset's prediction log folder; without it the route answers 404. */
  predictionLogDir?: string;
}

export interface PredictionSummary {
  hours: { hour: string; count: number; churned: number; meanProbability: number | null }[];
  /** Served predictions per probability decile (0–0.1, …, 0.9–1). */
  histogram: number[];
  total: number;
}

/** The summary of hour tallies, in the order given. Pure. */
export function summariseTallies(hours: { hour: string; tally: HourTally }[]): PredictionSummary {
  const histogram = new Array<number>(10).fill(0);
  let total = 0;
  const out = hours.map(({ hour, tally }) => {
    total += tally.count;
    tally.histogram.forEach((n, i) => {
      histogram[i] = (histogram[i] ?? 0) + n;
    });
    return {
      hour,
      count: tally.count,
      churned: tally.churned,
      meanProbability: tally.count ? tally.sum / tally.count : null,
    };
  });
  return { hours: out, histogram, total };
}

/**
 * Hourly volume, churn share and mean score, and the score histogram, of served predictions in
 * JSON Lines (shadow lines and unparsable lines are left out). Pure.
 */
export function summarisePredictions(files: { hour: string; text: string }[]): PredictionSummary {
  return summariseTallies(
    files.map(({ hour, text }) => {
      const tally = emptyTally();
      for (const line of text.split('\n')) tallyLine(tally, line);
      return { hour, tally };
    }),
  );
}

/** `GET /v1/monitoring/predictions` (admin): the default dataset's served predictions per hour. */
export const predictionSummaryRoutes: FastifyPluginAsync<PredictionSummaryRoutesOptions> = async (
  app,
  opts,
) => {
  const reader = new PredictionSummaryReader();
  app.addHook('onClose', () => reader.close());
  app.get(
    '/monitoring/predictions',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Served predictions per hour and the score histogram, from the prediction log',
        tags: ['admin'],
        security: [{ basicAuth: [] }],
        querystring: {
          type: 'object',
          // Query values are strings (the app does not coerce types): digits, checked below.
          properties: { hours: { type: 'string', pattern: '^[0-9]{1,3}$' } },
          additionalProperties: false,
        },
        response: { ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (req, reply) => {
      const hours = Number((req.query as { hours?: string }).hours ?? 24);
      if (hours < 1 || hours > 168)
        return reply
          .status(400)
          .send({ error: 'bad_request', message: 'querystring.hours must be 1 to 168' });
      const dir = opts.predictionLogDir;
      if (!dir)
        return reply.status(404).send({ error: 'not_found', message: 'this API writes no prediction log' });
      const now = Date.now();
      const stamps = Array.from({ length: hours }, (_, i) => now - (hours - 1 - i) * 3_600_000);
      // Read in a worker thread, slice by slice, from where the last call stopped: a large log
      // neither blocks the event loop nor has to fit in memory.
      const tallies = await reader.tally(
        stamps.map((ts) => path.join(dir, partitionOf(ts), 'predictions.jsonl')),
      );
      return summariseTallies(
        stamps.map((ts, i) => ({
          hour: `${new Date(ts).toISOString().slice(0, 13)}:00Z`,
          tally: tallies[i] ?? emptyTally(),
        })),
      );
    },
  );
};
