import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  createLogger,
  DEFAULT_BOOTSTRAP,
  DEFAULT_POLICY,
  isDriftwoodError,
  type MlflowClient,
  type PromoteResult,
  type PromotionPolicy,
  runPromote,
  runRollback,
} from '@driftwood/tasks';
import type { FastifyPluginAsync } from 'fastify';
import { partitionOf } from '../predictions/log.js';
import { errorResponses, featureRowSchema } from '../schemas.js';
import { checkFeatureRow } from '../validate.js';
import { championOr503 } from './model-guard.js';

export interface AdminRoutesOptions {
  mlflow: MlflowClient;
  modelName: string;
  /** The alias the API serves; the one a rollback moves. */
  alias: string;
  /** The prediction log's folder; without it `/v1/monitoring/predictions` answers 404. */
  predictionLogDir?: string;
  /** The promotion gate `POST /v1/admin/promote` applies (`driftwood promote`'s defaults unless given). */
  promotionPolicy?: PromotionPolicy;
}

export interface PredictionSummary {
  hours: { hour: string; count: number; churned: number; meanProbability: number | null }[];
  /** Served predictions per probability decile (0–0.1, …, 0.9–1). */
  histogram: number[];
  total: number;
}

/**
 * Hourly volume, churn share and mean score, and the score histogram, of served predictions in
 * JSON Lines (shadow lines and unparsable lines are left out). Pure.
 */
export function summarisePredictions(files: { hour: string; text: string }[]): PredictionSummary {
  const histogram = new Array<number>(10).fill(0);
  let total = 0;
  const hours = files.map(({ hour, text }) => {
    let count = 0;
    let churned = 0;
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      let r: { served?: boolean; probability?: number; label?: number };
      try {
        r = JSON.parse(line);
      } catch {
        continue; // a line being written
      }
      if (r.served !== true || typeof r.probability !== 'number') continue;
      count += 1;
      churned += r.label === 1 ? 1 : 0;
      sum += r.probability;
      const bin = Math.min(9, Math.max(0, Math.floor(r.probability * 10)));
      histogram[bin] = (histogram[bin] ?? 0) + 1;
    }
    total += count;
    return { hour, count, churned, meanProbability: count ? sum / count : null };
  });
  return { hours, histogram, total };
}

const MAX_VERSIONS = 50;
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
 * `GET /v1/models` (predict): the registered model's versions with their aliases, holdout metrics
 * and Driftwood tags, and the promotion audit trail, newest first — what the dashboard's Models page
 * shows. `POST /v1/admin/rollback` (admin): moves the served alias back through the same
 * `runRollback` the CLI uses (the target must load; the move is audited), then swaps it in at once.
 * `POST /v1/admin/promote` (admin): `driftwood promote`'s `runPromote` for one version — the same
 * evaluation, gate, staging smoke check and audit — answering the decision with every check; 409
 * with the gate's result when it refuses.
 */
export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, opts) => {
  const { mlflow, modelName } = opts;

  app.get(
    '/models',
    {
      config: { role: 'predict' },
      schema: {
        summary: 'Versions of the served registered model with metrics, aliases and the promotion history',
        tags: ['model'],
        security: [{ basicAuth: [] }],
        response: { ...errorResponses(401, 403, 429) },
      },
    },
    async () => {
      const [registered, versions] = await Promise.all([
        mlflow.getRegisteredModel(modelName),
        mlflow.searchModelVersions(modelName, MAX_VERSIONS),
      ]);
      const trail = (registered.tags ?? [])
        .filter((t) => t.key.startsWith('driftwood.audit.'))
        .flatMap((t) => {
          try {
            return [JSON.parse(t.value) as Record<string, unknown>];
          } catch {
            return [];
          }
        })
        .sort((a, b) => String(b.at).localeCompare(String(a.at)));
      const rows = await Promise.all(
        versions.map(async (v) => {
          const metrics: Record<string, number> = {};
          if (v.run_id) {
            const run = await mlflow.getRun(v.run_id).catch(() => undefined);
            for (const m of run?.data.metrics ?? []) metrics[m.key] = m.value;
          }
          const tags = Object.fromEntries(
            (v.tags ?? []).filter((t) => t.key.startsWith('driftwood.')).map((t) => [t.key, t.value]),
          );
          return {
            version: v.version,
            status: v.status,
            created: v.creation_timestamp ? new Date(v.creation_timestamp).toISOString() : null,
            // Version searches leave aliases out: they come from the registered model.
            aliases: (registered.aliases ?? []).filter((a) => a.version === v.version).map((a) => a.alias),
            runId: v.run_id ?? null,
            metrics,
            tags,
          };
        }),
      );
      rows.sort((a, b) => Number(b.version) - Number(a.version));
      return {
        name: modelName,
        servedAlias: opts.alias,
        aliases: Object.fromEntries((registered.aliases ?? []).map((a) => [a.alias, a.version])),
        versions: rows,
        history: trail,
      };
    },
  );

  app.get(
    '/whoami',
    {
      config: { role: 'predict' },
      schema: {
        summary: 'The authenticated user and roles (the dashboard shows admin actions only to admins)',
        tags: ['model'],
        security: [{ basicAuth: [] }],
        response: { ...errorResponses(401, 403, 429) },
      },
    },
    async (req) => ({ user: req.principal?.user ?? null, roles: [...(req.principal?.roles ?? [])] }),
  );

  app.get(
    '/inputs',
    {
      config: { role: 'predict' },
      schema: {
        summary:
          "The served model's input fields: numeric with training median and spread, categorical with known values",
        tags: ['model'],
        security: [{ basicAuth: [] }],
        response: { ...errorResponses(401, 403, 429, 503) },
      },
    },
    async (_req, reply) => {
      const champion = championOr503(app.models, reply);
      if (!champion) return reply;
      const t = champion.model.transform;
      return {
        model: { name: champion.info.name, version: champion.info.version, alias: champion.info.alias },
        numeric: t.numeric.map((n) => ({ name: n.name, median: n.impute, mean: n.center, std: n.scale })),
        categorical: t.categorical.map((c) => ({ name: c.name, values: c.categories, default: c.impute })),
        dropped: t.dropped.map((d) => d.name),
      };
    },
  );

  const contract = app.models.contract();
  app.post(
    '/explain',
    {
      config: { role: 'predict' },
      schema: {
        summary:
          'Per-feature contributions: how far the probability moves when each input is replaced by its training default',
        tags: ['model'],
        security: [{ basicAuth: [] }],
        body: featureRowSchema(contract),
        response: { ...errorResponses(400, 401, 403, 413, 415, 429, 503) },
      },
    },
    async (req, reply) => {
      const champion = championOr503(app.models, reply);
      if (!champion) return reply;
      const row = req.body as Record<string, unknown>;
      const problem = contract ? undefined : checkFeatureRow(champion.model.transform, row);
      if (problem) return reply.status(400).send({ error: 'bad_request', message: problem });
      const t = champion.model.transform;
      const base = champion.model.score(row);
      // Scored in-process, not through /v1/predict: explanations must not land in the prediction log.
      const defaults: [string, unknown][] = [
        ...t.numeric.map((n): [string, unknown] => [n.name, n.impute]),
        ...t.categorical.map((c): [string, unknown] => [c.name, c.impute]),
      ];
      const contributions = defaults
        .map(([name, value]) => ({
          feature: name,
          value: row[name] ?? null,
          baseline: value,
          contribution: base - champion.model.score({ ...row, [name]: value }),
        }))
        .sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution));
      const { name, version, alias } = champion.info;
      return {
        model: { name, version, alias },
        probability: base,
        method:
          'perturbation: probability minus the probability with the feature at its training median / most frequent value',
        contributions,
      };
    },
  );

  app.get(
    '/monitoring/predictions',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Served predictions per hour and the score histogram, from the prediction log',
        tags: ['admin'],
        security: [{ basicAuth: [] }],
        querystring: {
          type: 'object',
          // Query values are strings (the app does not coerce types): digits, checked below.
          properties: { hours: { type: 'string', pattern: '^[0-9]{1,3}$' } },
          additionalProperties: false,
        },
        response: { ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (req, reply) => {
      const hours = Number((req.query as { hours?: string }).hours ?? 24);
      if (hours < 1 || hours > 168)
        return reply
          .status(400)
          .send({ error: 'bad_request', message: 'querystring.hours must be 1 to 168' });
      const dir = opts.predictionLogDir;
      if (!dir)
        return reply.status(404).send({ error: 'not_found', message: 'this API writes no prediction log' });
      const now = Date.now();
      const files = await Promise.all(
        Array.from({ length: hours }, async (_, i) => {
          const ts = now - (hours - 1 - i) * 3_600_000;
          const file = path.join(dir, partitionOf(ts), 'predictions.jsonl');
          const text = await readFile(file, 'utf8').catch(() => '');
          return { hour: `${new Date(ts).toISOString().slice(0, 13)}:00Z`, text };
        }),
      );
      return summarisePredictions(files);
    },
  );

  app.get(
    '/models/:version/plots/:plot',
    {
      config: { role: 'predict' },
      schema: {
        summary: "A version's training plot (roc, pr, confusion) from its MLflow run, as PNG",
        tags: ['model'],
        security: [{ basicAuth: [] }],
        params: {
          type: 'object',
          properties: {
            version: { type: 'string', pattern: '^[0-9]{1,12}$' },
            plot: { type: 'string', enum: ['roc', 'pr', 'confusion'] },
          },
          required: ['version', 'plot'],
        },
        response: { ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (req, reply) => {
      const { version, plot } = req.params as { version: string; plot: string };
      const missing = (what: string) => reply.status(404).send({ error: 'not_found', message: what });
      const mv = await mlflow.getModelVersion(modelName, version).catch(() => undefined);
      if (!mv?.run_id) return missing(`version ${version} of ${modelName} has no run`);
      const run = await mlflow.getRun(mv.run_id);
      const png = await mlflow
        .downloadArtifact(run.info.artifact_uri, `plots/${plot}.png`)
        .catch(() => undefined);
      if (!png) return missing(`version ${version} has no ${plot} plot (plots/${plot}.png in its run)`);
      // A version's artifacts never change: the browser may keep them (private: they sit behind auth).
      return reply.type('image/png').header('cache-control', 'private, max-age=86400').send(png);
    },
  );

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
          ...errorResponses(400, 401, 403, 409, 429),
        },
      },
    },
    async (req, reply) => {
      const body = (req.body ?? {}) as { version?: string; reason?: string };
      const user = req.principal?.user ?? 'api';
      try {
        const result = await runRollback(
          { modelName, alias: opts.alias, version: body.version, reason: body.reason },
          { mlflow, log: quiet, now: Date.now, user },
        );
        await app.models.refreshEverywhere();
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
          ...errorResponses(400, 401, 403, 429),
        },
      },
    },
    async (req, reply) => {
      const { version } = req.body as { version: string };
      try {
        const result = await runPromote(
          {
            modelName,
            alias: opts.alias,
            version,
            policy: opts.promotionPolicy ?? DEFAULT_POLICY,
            bootstrap: DEFAULT_BOOTSTRAP,
          },
          { mlflow, log: quiet, now: Date.now, user: req.principal?.user ?? 'api' },
        );
        await app.models.refreshEverywhere();
        return { ...result, served: app.models.champion()?.info.version ?? null };
      } catch (err) {
        if (isDriftwoodError(err, 'GATE_NOT_PASSED')) {
          const result = err.details.result as PromoteResult;
          return reply.status(409).send({ error: 'gate_not_passed', message: err.message, result });
        }
        // No holdout to judge on, or a candidate that does not load: refused, the alias did not move.
        if (isDriftwoodError(err) && (err.code === 'DATA_MISSING' || err.code === 'MODEL_INVALID'))
          return reply.status(409).send({ error: 'promotion_refused', message: err.message, result: null });
        throw err;
      }
    },
  );
};
