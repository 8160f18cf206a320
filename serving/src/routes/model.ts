import type { FastifyPluginAsync } from 'fastify';
import type { ChallengerMode } from '../routing/canary.js';
import type { CanaryGuard } from '../routing/guard.js';
import { errorResponses, modelInfoSchema } from '../schemas.js';

export interface ModelRoutesOptions {
  challengerMode: ChallengerMode;
  canaryPercent: number;
  guard: CanaryGuard;
}

export const modelRoutes: FastifyPluginAsync<ModelRoutesOptions> = async (app, opts) => {
  app.get(
    '/model',
    {
      config: { role: 'predict' },
      schema: {
        summary: 'The served champion (and challenger): version, alias, run, data snapshot, holdout metrics',
        tags: ['model'],
        security: [{ basicAuth: [] }],
        response: {
          200: {
            ...modelInfoSchema,
            properties: {
              ...modelInfoSchema.properties,
              challenger: { ...modelInfoSchema, type: ['object', 'null'] },
              routing: {
                type: 'object',
                properties: {
                  mode: { type: 'string' },
                  canary_percent: { type: 'number' },
                  rolled_back: {
                    type: ['object', 'null'],
                    properties: { version: { type: 'string' }, reason: { type: 'string' } },
                  },
                },
              },
            },
          },
          ...errorResponses(401, 403, 429, 503),
        },
      },
    },
    async (_req, reply) => {
      const champion = app.models.champion();
      if (!champion)
        return reply.status(503).send({ error: 'model_not_loaded', message: 'no model is loaded yet' });
      return {
        ...champion.info,
        challenger: app.models.challenger()?.info ?? null,
        routing: {
          mode: opts.challengerMode,
          canary_percent: opts.canaryPercent,
          rolled_back: opts.guard.rolledBack() ?? null,
        },
      };
    },
  );

  app.post(
    '/admin/reload',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Reads the registry aliases now and swaps in any version that moved (checked first)',
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
    async () => ({
      outcomes: (await app.models.refreshEverywhere()).map((o) => ({ ...o, version: o.version ?? null })),
    }),
  );
};
