import type { FastifyPluginAsync } from 'fastify';
import { checkFeatureRow } from '../validate.js';

const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const;

const responseSchema = {
  400: errorSchema,
  503: errorSchema,
  200: {
    type: 'object',
    properties: {
      probability: { type: 'number' },
      label: { type: 'integer' },
      model: {
        type: 'object',
        properties: { name: { type: 'string' }, version: { type: 'string' }, alias: { type: 'string' } },
      },
    },
  },
};

export const predictRoutes: FastifyPluginAsync = async (app) => {
  app.post(
    '/predict',
    { schema: { body: { type: 'object' }, response: responseSchema } },
    async (req, reply) => {
      const model = app.models.current();
      if (!model)
        return reply
          .status(503)
          .header('retry-after', '5')
          .send({ error: 'model_not_loaded', message: 'no model is loaded yet' });
      const problem = checkFeatureRow(model.transform, req.body as Record<string, unknown>);
      if (problem) return reply.status(400).send({ error: 'bad_request', message: problem });
      const probability = model.score(req.body as Record<string, unknown>);
      return {
        probability,
        label: probability >= 0.5 ? 1 : 0,
        model: { name: model.name, version: model.version, alias: model.alias },
      };
    },
  );
};
