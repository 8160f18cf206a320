import type { FastifyPluginAsync } from 'fastify';
import type { ForecastHolder } from '../forecast/holder.js';
import { mlflowSignatureProblem } from '../hooks/mlflow-signature.js';
import { errorResponses } from '../schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: string;
  }
}

export interface HookRoutesOptions {
  secret: string;
  /** The forecast datasets' holders; the tabular ones are `app.datasetModels`. */
  forecasts: ForecastHolder[];
  /** The aliases this API serves; an event about any other alias is acknowledged and ignored. */
  aliases: string[];
  now?: () => number;
}

const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/**
 * `POST /v1/hooks/mlflow`: MLflow's registry webhook. A genuine delivery about one of our aliases
 * makes the datasets served from that model read the registry now (the same checked swap as the
 * poller, which stays as the fallback); the answer does not wait for the load, so MLflow's delivery does not time out.
 */
export const hookRoutes: FastifyPluginAsync<HookRoutesOptions> = async (app, opts) => {
  const now = opts.now ?? Date.now;
  // The signature covers the exact bytes sent: keep them beside the parsed body (this plugin only).
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    req.rawBody = body as string;
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(Object.assign(new Error('body is not valid JSON'), { statusCode: 400 }), undefined);
    }
  });
  app.post(
    '/hooks/mlflow',
    {
      schema: {
        summary: 'MLflow registry webhook (HMAC-signed): an alias moved, read the registry now',
        tags: ['admin'],
        response: {
          200: {
            type: 'object',
            properties: { accepted: { type: 'boolean' }, refresh: { type: 'boolean' } },
          },
          ...errorResponses(400, 401, 413, 429),
        },
      },
    },
    async (req, reply) => {
      const problem = mlflowSignatureProblem(
        opts.secret,
        {
          deliveryId: header(req.headers['x-mlflow-delivery-id']),
          timestamp: header(req.headers['x-mlflow-timestamp']),
          signature: header(req.headers['x-mlflow-signature']),
          rawBody: req.rawBody ?? '',
        },
        now(),
      );
      if (problem) {
        req.log.warn({ reason: problem }, 'mlflow webhook: delivery refused');
        return reply.status(401).send({ error: 'bad_signature', message: problem });
      }
      const event = req.body as { entity?: string; data?: { name?: string; alias?: string } };
      const ours = event.entity === 'model_version_alias' && opts.aliases.includes(event.data?.alias ?? '');
      const name = event.data?.name;
      const tabular = ours ? app.datasetModels.all().filter((h) => h.modelName === name) : [];
      const forecasts = ours ? opts.forecasts.filter((h) => h.modelName === name) : [];
      const fail = (err: unknown) => app.log.error({ err, model: name }, 'mlflow webhook: refresh failed');
      for (const h of tabular) h.refreshEverywhere().catch(fail);
      for (const h of forecasts) h.reload().catch(fail);
      return { accepted: true, refresh: tabular.length + forecasts.length > 0 };
    },
  );
};
