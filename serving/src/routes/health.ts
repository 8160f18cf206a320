import type { FastifyPluginAsync } from 'fastify';
import { errorResponses, modelRefSchema } from '../schemas.js';

/** Open routes, exempt from load shedding and rate limits: orchestrators must always reach them. */
const open = { pressureHandler: () => undefined, rateLimit: false } as const;

export const healthRoutes: FastifyPluginAsync<{ metricsRole?: 'admin' }> = async (app, opts) => {
  app.get(
    '/health/live',
    {
      config: open,
      schema: {
        tags: ['health'],
        response: { 200: { type: 'object', properties: { status: { type: 'string' } } } },
      },
    },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/health/ready',
    {
      config: open,
      schema: {
        tags: ['health'],
        response: {
          200: { type: 'object', properties: { status: { type: 'string' }, model: modelRefSchema } },
          503: { type: 'object', properties: { status: { type: 'string' }, reason: { type: 'string' } } },
        },
      },
    },
    async (_req, reply) => {
      const served = app.models.champion();
      if (!served)
        return reply
          .status(503)
          .send({ status: 'not_ready', reason: app.models.lastError() ?? 'no model loaded yet' });
      const { name, version, alias } = served.info;
      return { status: 'ready', model: { name, version, alias } };
    },
  );
  app.get(
    '/metrics',
    {
      config: { ...open, role: opts.metricsRole },
      schema: { tags: ['health'], summary: 'Prometheus metrics', response: errorResponses(401, 403) },
    },
    async (_req, reply) => {
      reply.header('content-type', app.metrics.registry.contentType);
      return app.metrics.registry.metrics();
    },
  );
};
