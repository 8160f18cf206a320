import type { FastifyPluginAsync } from 'fastify';

export const healthRoutes: FastifyPluginAsync = async (app) => {
  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/health/ready', async (_req, reply) => {
    const model = app.models.current();
    if (!model)
      return reply
        .status(503)
        .send({ status: 'not_ready', reason: app.models.lastError() ?? 'no model loaded yet' });
    return { status: 'ready', model: { name: model.name, version: model.version, alias: model.alias } };
  });
};
