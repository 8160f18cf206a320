import type { FastifyPluginAsync } from 'fastify';
import type { ForecastHolder } from '../forecast/holder.js';
import { errorResponses } from '../schemas.js';

export interface DatasetRoutesOptions {
  forecasts: ForecastHolder[];
  defaultDataset: string | undefined;
}

const datasetSchema = {
  type: 'object',
  properties: {
    dataset: { type: 'string' },
    kind: { type: 'string', enum: ['tabular', 'forecast'] },
    model_name: { type: 'string' },
    default: { type: 'boolean' },
    champion: { type: ['string', 'null'], description: 'the version answering, null when none is loaded' },
    error: { type: ['string', 'null'] },
  },
  required: ['dataset', 'kind', 'model_name', 'default', 'champion'],
} as const;

/**
 * `GET /v1/datasets`: what this process serves, dataset by dataset, and which champion answers for
 * each. A path under `/v1/datasets/<name>/` that no route serves is a 404 naming the dataset (or
 * the route the dataset does not have), not Fastify's bare "route not found".
 */
export const datasetRoutes: FastifyPluginAsync<DatasetRoutesOptions> = async (app, opts) => {
  const listing = () => [
    ...app.datasetModels.all().map((h) => ({
      dataset: h.dataset,
      kind: 'tabular' as const,
      model_name: h.modelName,
      default: h.dataset === opts.defaultDataset,
      champion: h.champion()?.info.version ?? null,
      error: h.champion() ? null : (h.lastError() ?? null),
    })),
    // A forecast model loads on first use: `champion` is null until a forecast was asked for.
    ...opts.forecasts.map((h) => ({
      dataset: h.dataset,
      kind: 'forecast' as const,
      model_name: h.modelName,
      default: false,
      champion: h.loaded()?.version ?? null,
      error: h.lastError ?? null,
    })),
  ];
  app.get(
    '/datasets',
    {
      config: { role: 'predict' },
      schema: {
        summary: 'The datasets this API serves, with the champion version answering for each',
        tags: ['model'],
        security: [{ basicAuth: [] }],
        response: {
          200: { type: 'object', properties: { datasets: { type: 'array', items: datasetSchema } } },
          ...errorResponses(401, 403, 429),
        },
      },
    },
    async () => ({ datasets: listing() }),
  );
  app.all(
    '/datasets/:dataset/*',
    { config: { role: 'predict' }, schema: { hide: true } },
    async (req, reply) => {
      const { dataset } = req.params as { dataset: string };
      const served = listing().map((d) => d.dataset);
      if (!served.includes(dataset))
        return reply.status(404).send({
          error: 'unknown_dataset',
          message: `dataset ${dataset} is not served here (served: ${served.join(', ') || 'none'})`,
        });
      return reply.status(404).send({
        error: 'not_found',
        message: `dataset ${dataset} has no route ${req.method} ${req.url.split('?')[0]}`,
      });
    },
  );
};
