import { createLogger, isDriftwoodError, type MlflowClient, runRollback } from '@driftwood/tasks';
import type { FastifyPluginAsync } from 'fastify';
import { promoteResponse, runPromoteStep } from '../promote/promote-step.js';
import { errorResponses } from '../schemas.js';

export interface RegistryAdminRoutesOptions {
  mlflow: MlflowClient;
  /** The default dataset's registered model, whose alias the routes move. */
  modelName: string;
  /** The default dataset, passed to the promote step (absent: the step's own default). */
  dataset?: string;
  /** The alias the API serves; the one a rollback or promotion moves. */
  alias: string;
}

const quiet = createLogger('silent');

const checkSchema = {
  type: 'object',
  properties: { name: { type: 'string' }, passed: { type: 'boolean' }, detail: { type: 'string' } },
} as const;

/** What a promotion answers, moved or refused: the gate's decision and every check with its detail. */
const promoteResultSchema = {
  type: 'object',
  properties: {
    alias: { type: 'string' },
    version: { type: 'string' },
    previous: { type: ['string', 'null'] },
    promoted: { type: 'boolean' },
    reason: { type: 'string' },
    checks: { type: 'array', items: checkSchema },
    evaluation: {
      type: 'object',
      properties: {
        holdoutRows: { type: 'number' },
        candidateRocAuc: { type: ['number', 'null'] },
        championRocAuc: { type: ['number', 'null'] },
        diff: { type: ['number', 'null'] },
        interval: { type: ['array', 'null'], items: { type: 'number' } },
      },
    },
    served: { type: ['string', 'null'] },
  },
} as const;

/**
 * Admin routes that move the default dataset's served alias. `POST /v1/admin/rollback` moves it back
 * through the same `runRollback` the CLI uses (the target must load; the move is audited).
 * `POST /v1/admin/promote` hands the promotion to `driftwood promote` in a child process — the same
 * evaluation, gate, staging smoke check, compare-and-set and audit as the DAG's step — and maps its
 * exit code: 0 promoted (200), 99 gate not passed (409 with the result), 2 with CHAMPION_CHANGED
 * (409 `champion_changed`: another move won since the version was evaluated), 2 with
 * VERSION_NOT_FOUND (404), 2 with DATA_MISSING (409 `not_ready`: no evidence yet), other 2 bad
 * arguments (400), else 502. Both answer 404 for a version the
 * registry does not hold, and swap the moved version in at once.
 */
export const registryAdminRoutes: FastifyPluginAsync<RegistryAdminRoutesOptions> = async (app, opts) => {
  const { mlflow, modelName } = opts;
  /** Why `version` cannot be moved to (the registry does not hold it), or undefined. */
  const versionMissing = async (version: string): Promise<string | undefined> => {
    try {
      await mlflow.getModelVersion(modelName, version);
      return undefined;
    } catch (err) {
      if (isDriftwoodError(err) && String(err.details.mlflowCode) === 'RESOURCE_DOES_NOT_EXIST')
        return `model ${modelName} has no version ${version}`;
      throw err;
    }
  };

  app.post(
    '/admin/rollback',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Rolls the served alias back (to the previous holder, or to `version`) and reloads',
        tags: ['admin'],
        security: [{ basicAuth: [] }],
        body: {
          type: 'object',
          properties: {
            version: { type: 'string', pattern: '^[0-9]+$', maxLength: 12 },
            reason: { type: 'string', minLength: 1, maxLength: 500 },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              alias: { type: 'string' },
              version: { type: 'string' },
              previous: { type: ['string', 'null'] },
              reason: { type: 'string' },
              served: { type: ['string', 'null'] },
            },
          },
          ...errorResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (req, reply) => {
      const body = (req.body ?? {}) as { version?: string; reason?: string };
      const user = req.principal?.user ?? 'api';
      const unknown = body.version === undefined ? undefined : await versionMissing(body.version);
      if (unknown) return reply.status(404).send({ error: 'version_not_found', message: unknown });
      try {
        const result = await runRollback(
          { modelName, alias: opts.alias, version: body.version, reason: body.reason },
          { mlflow, log: quiet, now: Date.now, user },
        );
        await app.datasetModels.refreshEverywhere();
        return { ...result, served: app.models.champion()?.info.version ?? null };
      } catch (err) {
        // Nothing to roll back to, an unknown version, or a target that does not load: the alias did not move.
        if (isDriftwoodError(err) && err.code !== 'MLFLOW_UNAVAILABLE')
          return reply.status(409).send({ error: 'rollback_refused', message: err.message });
        throw err;
      }
    },
  );

  app.post(
    '/admin/promote',
    {
      config: { role: 'admin' },
      schema: {
        summary:
          "Runs `driftwood promote`'s gate for `version` against the served alias and moves the alias only when it passes",
        tags: ['admin'],
        security: [{ basicAuth: [] }],
        body: {
          type: 'object',
          properties: { version: { type: 'string', pattern: '^[0-9]+$', maxLength: 12 } },
          required: ['version'],
          additionalProperties: false,
        },
        response: {
          200: promoteResultSchema,
          409: {
            type: 'object',
            properties: {
              error: { type: 'string' },
              message: { type: 'string' },
              result: { anyOf: [promoteResultSchema, { type: 'null' }] },
            },
          },
          ...errorResponses(400, 401, 403, 404, 429, 502),
        },
      },
    },
    async (req, reply) => {
      const { version } = req.body as { version: string };
      const unknown = await versionMissing(version);
      if (unknown) return reply.status(404).send({ error: 'version_not_found', message: unknown });
      const outcome = await runPromoteStep({
        ...(opts.dataset ? { dataset: opts.dataset } : {}),
        modelName,
        version,
        alias: opts.alias,
        trackingUri: mlflow.baseUrl,
        user: req.principal?.user ?? 'api',
      });
      const { status, body } = promoteResponse(outcome);
      if (status !== 200) {
        if (status === 502)
          req.log.error({ code: outcome.code, stderr: outcome.stderr.slice(-2000) }, 'promote step failed');
        return reply.status(status).send(body);
      }
      await app.datasetModels.refreshEverywhere();
      return { ...body, served: app.models.champion()?.info.version ?? null };
    },
  );
};
