import type { FastifyPluginAsync } from 'fastify';
import type { ForecastHolder } from '../forecast/holder.js';
import { errorResponses } from '../schemas.js';

/** `POST /v1/admin/reload`: every served dataset reads its aliases now, in every API process. */
export const reloadRoutes: FastifyPluginAsync<{ forecasts: ForecastHolder[] }> = async (app, opts) => {
  app.post(
    '/admin/reload',
    {
      config: { role: 'admin' },
      schema: {
        summary:
          "Reads every dataset's registry aliases now and swaps in any version that moved (checked first)",
        tags: ['admin'],
        security: [{ basicAuth: [] }],
        response: {
          200: {
            type: 'object',
            properties: {
              outcomes: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    dataset: { type: 'string' },
                    slot: { type: 'string' },
                    alias: { type: 'string' },
                    action: { type: 'string' },
                    version: { type: ['string', 'null'] },
                    error: { type: 'string' },
                  },
                },
              },
            },
          },
          ...errorResponses(401, 403, 429),
        },
      },
    },
    async () => {
      const tabular = await app.datasetModels.refreshEverywhere();
      const forecasts = await Promise.all(
        opts.forecasts.map(async (h) => {
          const before = h.loaded()?.version;
          await h.reload();
          const version = h.loaded()?.version;
          return {
            dataset: h.dataset,
            slot: 'champion',
            alias: h.alias,
            action: version === before ? 'keep' : 'load',
            version,
            ...(h.lastError ? { error: h.lastError } : {}),
          };
        }),
      );
      return { outcomes: [...tabular, ...forecasts].map((o) => ({ ...o, version: o.version ?? null })) };
    },
  );
};
