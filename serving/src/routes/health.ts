import type { FastifyPluginAsync } from 'fastify';
import { errorResponses, modelRefSchema } from '../schemas.js';

/** Open routes, exempt from load shedding and rate limits: orchestrators must always reach them. */
const open = { pressureHandler: () => undefined, rateLimit: false, shed: false } as const;

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
      // The default dataset's champion; without a default dataset, any dataset's.
      const served =
        app.datasetModels.get(app.models.dataset) === undefined
          ? app.datasetModels
              .all()
              .map((h) => h.champion())
              .find((c) => c !== undefined)
          : app.models.champion();
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
      schema: { tags: ['health'], summary: 'Prometheus metrics', response: errorResponses(401, 403, 503) },
    },
    async (_req, reply) => {
      // In a cluster, every worker's counts, summed; a scrape must not see one process's share.
      let text: string;
      try {
        text = app.peers ? await app.peers.metrics() : await app.metrics.registry.metrics();
      } catch (err) {
        return reply
          .status(503)
          .header('retry-after', '5')
          .send({ error: 'metrics_unavailable', message: (err as Error).message });
      }
      reply.header('content-type', app.metrics.registry.contentType);
      return text;
    },
  );
};
