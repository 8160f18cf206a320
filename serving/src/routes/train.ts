import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { type AirflowOptions, triggerDagRun } from '../airflow/trigger.js';
import { errorResponses } from '../schemas.js';

/** `POST /v1/train` (admin): starts the retraining DAG in Airflow and answers with its run id. */
export const trainRoutes: FastifyPluginAsync<{ airflow: AirflowOptions; now?: () => number }> = async (
  app,
  opts,
) => {
  const now = opts.now ?? Date.now;
  app.post(
    '/train',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Start the retraining DAG through Airflow’s REST API',
        tags: ['admin'],
        security: [{ basicAuth: [] }],
        body: {
          type: ['object', 'null'],
          properties: { reason: { type: 'string', maxLength: 200 } },
          additionalProperties: false,
        },
        response: {
          202: {
            type: 'object',
            properties: {
              dag_id: { type: 'string' },
              dag_run_id: { type: 'string' },
              state: { type: 'string' },
            },
          },
          ...errorResponses(400, 401, 403, 429, 502),
        },
      },
    },
    async (req, reply) => {
      const reason = (req.body as { reason?: string } | null)?.reason ?? 'requested through the API';
      const runId = `api__${new Date(now()).toISOString()}__${randomUUID().slice(0, 8)}`;
      try {
        const run = await triggerDagRun(opts.airflow, runId, {
          reason,
          requested_by: req.principal?.user ?? 'anonymous',
        });
        req.log.info(
          { dagRunId: run.dag_run_id, by: req.principal?.user },
          'train: retraining DAG run started',
        );
        return reply.status(202).send(run);
      } catch (err) {
        // Airflow's answer is not ours to hide: a 502 that says which side failed, without secrets.
        req.log.error({ err }, 'train: Airflow did not start the run');
        return reply.status(502).send({ error: 'airflow_error', message: (err as Error).message });
      }
    },
  );
};
