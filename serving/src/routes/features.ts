import type { FastifyPluginAsync } from 'fastify';
import { errorResponses, featureRowSchema, modelRefSchema } from '../schemas.js';
import { checkBounds, checkFeatureRow } from '../validate.js';
import { championOr503 } from './model-guard.js';

/**
 * `POST /v1/features` (admin): the model-ready vector the served champion computes for one
 * customer's raw fields, with the name of each column. It is how skew is checked against training
 * (tests/integration/skew.test.ts) and how a surprising prediction is explained by hand.
 */
export const featureRoutes: FastifyPluginAsync = async (app) => {
  const contract = app.models.contract();
  app.post(
    '/features',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'The transformed feature vector of one customer, as the champion sees it',
        tags: ['model'],
        security: [{ basicAuth: [] }],
        body: featureRowSchema(contract),
        response: {
          200: {
            type: 'object',
            properties: {
              model: modelRefSchema,
              outputs: { type: 'array', items: { type: 'string' } },
              vector: { type: 'array', items: { type: 'number' } },
            },
            required: ['model', 'outputs', 'vector'],
          },
          ...errorResponses(400, 401, 403, 413, 415, 429, 503),
        },
      },
    },
    async (req, reply) => {
      const champion = championOr503(app.models, reply);
      if (!champion) return reply;
      const row = req.body as Record<string, unknown>;
      const problem = contract
        ? checkBounds(champion.model.transform, row)
        : checkFeatureRow(champion.model.transform, row);
      if (problem) return reply.status(400).send({ error: 'bad_request', message: problem });
      const { name, version, alias } = champion.info;
      return {
        model: { name, version, alias },
        outputs: champion.model.transform.outputs,
        vector: Array.from(champion.model.vector(row)),
      };
    },
  );
};
