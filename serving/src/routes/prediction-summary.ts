import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { partitionOf } from '../predictions/log.js';
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

/**
 * Hourly volume, churn share and mean score, and the score histogram, of served predictions in
 * JSON Lines (shadow lines and unparsable lines are left out). Pure.
 */
export function summarisePredictions(files: { hour: string; text: string }[]): PredictionSummary {
  const histogram = new Array<number>(10).fill(0);
  let total = 0;
  const hours = files.map(({ hour, text }) => {
    let count = 0;
    let churned = 0;
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      let r: { served?: boolean; probability?: number; label?: number };
      try {
        r = JSON.parse(line);
      } catch {
        continue; // a line being written
      }
      if (r.served !== true || typeof r.probability !== 'number') continue;
      count += 1;
      churned += r.label === 1 ? 1 : 0;
      sum += r.probability;
      const bin = Math.min(9, Math.max(0, Math.floor(r.probability * 10)));
      histogram[bin] = (histogram[bin] ?? 0) + 1;
    }
    total += count;
    return { hour, count, churned, meanProbability: count ? sum / count : null };
  });
  return { hours, histogram, total };
}

/** `GET /v1/monitoring/predictions` (admin): the default dataset's served predictions per hour. */
export const predictionSummaryRoutes: FastifyPluginAsync<PredictionSummaryRoutesOptions> = async (
  app,
  opts,
) => {
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
      const files = await Promise.all(
        Array.from({ length: hours }, async (_, i) => {
          const ts = now - (hours - 1 - i) * 3_600_000;
          const file = path.join(dir, partitionOf(ts), 'predictions.jsonl');
          const text = await readFile(file, 'utf8').catch(() => '');
          return { hour: `${new Date(ts).toISOString().slice(0, 13)}:00Z`, text };
        }),
      );
      return summarisePredictions(files);
    },
  );
};
