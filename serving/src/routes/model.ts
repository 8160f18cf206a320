import type { FastifyPluginAsync } from 'fastify';
import type { ModelHolder } from '../plugins/model-registry.js';
import type { ChallengerMode } from '../routing/canary.js';
import type { CanaryGuard } from '../routing/guard.js';
import { errorResponses, modelInfoSchema } from '../schemas.js';
import { championOr503 } from './model-guard.js';

export interface ModelRoutesOptions {
  models: ModelHolder;
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
      const champion = championOr503(opts.models, reply);
      if (!champion) return reply;
      return {
        ...champion.info,
        challenger: opts.models.challenger()?.info ?? null,
        routing: {
          mode: opts.challengerMode,
          canary_percent: opts.canaryPercent,
          rolled_back: opts.guard.rolledBack() ?? null,
        },
      };
    },
  );
};
