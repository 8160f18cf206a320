import { CURVES_FORMAT, curvesPath, type MlflowClient, parseAuditTags } from '@driftwood/tasks';
import type { FastifyPluginAsync } from 'fastify';
import { errorResponses, featureRowSchema } from '../schemas.js';
import { checkBounds, checkFeatureRow } from '../validate.js';
import { championOr503 } from './model-guard.js';

export interface ModelsInfoRoutesOptions {
  mlflow: MlflowClient;
  /** The default dataset's registered model. */
  modelName: string;
  /** The alias the API serves. */
  alias: string;
}

const MAX_VERSIONS = 50;

/**
 * What a `predict` user may read about the default dataset's model: `GET /v1/models` (its versions
 * with aliases, holdout metrics and Driftwood tags, and the promotion audit trail, newest first — the
 * dashboard's Models page), `GET /v1/whoami`, `GET /v1/inputs`, `POST /v1/explain` and a version's
 * training plots. Nothing here changes the registry: that is `registry-admin.ts`, for admins.
 */
export const modelsInfoRoutes: FastifyPluginAsync<ModelsInfoRoutesOptions> = async (app, opts) => {
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
      // One short line per event in the tags (older trails: the event's JSON), newest first.
      const trail = parseAuditTags(registered.tags ?? []).reverse();
      const rows = await Promise.all(
        versions.map(async (v) => {
          const metrics: Record<string, number> = {};
          const params: Record<string, string> = {};
          if (v.run_id) {
            const run = await mlflow.getRun(v.run_id).catch(() => undefined);
            for (const m of run?.data.metrics ?? []) metrics[m.key] = m.value;
            for (const p of run?.data.params ?? []) params[p.key] = p.value;
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
            params,
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
        // Raw units throughout; center and spread are the mean and std, or the median and IQR when
        // the transform scales robustly. min and max are the training range (absent in older states).
        scaling: t.options.scaling,
        numeric: t.numeric.map((n) => ({
          name: n.name,
          median: n.impute,
          mean: n.center,
          std: n.scale,
          ...(n.min !== undefined && n.max !== undefined ? { min: n.min, max: n.max } : {}),
        })),
        categorical: t.categorical.map((c) => ({ name: c.name, values: c.categories, default: c.impute })),
        dropped: t.dropped.map((d) => d.name),
      };
    },
  );

  const contract = app.models.contract();
  const idColumn = app.models.idColumn;
  app.post(
    '/explain',
    {
      config: { role: 'predict' },
      schema: {
        summary:
          'Per-feature contributions: how far the probability moves when each input is replaced by its training default',
        tags: ['model'],
        security: [{ basicAuth: [] }],
        body: featureRowSchema(contract, idColumn),
        response: { ...errorResponses(400, 401, 403, 413, 415, 429, 503) },
      },
    },
    async (req, reply) => {
      const champion = championOr503(app.models, reply);
      if (!champion) return reply;
      const row = req.body as Record<string, unknown>;
      const problem = contract
        ? checkBounds(champion.model.transform, row)
        : checkFeatureRow(champion.model.transform, row, idColumn);
      if (problem) return reply.status(400).send({ error: 'bad_request', message: problem });
      const t = champion.model.transform;
      const base = champion.model.score(row);
      // Scored in-process, not through /v1/predict: explanations must not land in the prediction log.
      const defaults: [string, unknown][] = [
        ...t.numeric.map((n): [string, unknown] => [n.name, n.impute]),
        ...t.categorical.map((c): [string, unknown] => [c.name, c.impute]),
      ];
      // A field the request left out is imputed with the default itself: it moved nothing, and
      // showing a zero bar for it would read as "this value does not matter".
      const given = (name: string) => row[name] !== undefined && row[name] !== null && row[name] !== '';
      const contributions = defaults
        .filter(([name]) => given(name))
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
        imputed: defaults.map(([name]) => name).filter((name) => !given(name)),
      };
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

  app.get(
    '/models/:version/curves',
    {
      config: { role: 'predict' },
      schema: {
        summary:
          'ROC and PR points of a version and the champion it was evaluated against, on the same holdout (JSON)',
        tags: ['model'],
        security: [{ basicAuth: [] }],
        params: {
          type: 'object',
          properties: { version: { type: 'string', pattern: '^[0-9]{1,12}$' } },
          required: ['version'],
        },
        response: { ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (req, reply) => {
      const { version } = req.params as { version: string };
      const missing = (what: string) => reply.status(404).send({ error: 'not_found', message: what });
      const mv = await mlflow.getModelVersion(modelName, version).catch(() => undefined);
      if (!mv?.run_id) return missing(`version ${version} of ${modelName} has no run`);
      const run = await mlflow.getRun(mv.run_id);
      // Written by `driftwood evaluate` (tasks/src/evaluate/curves.ts) against the served alias.
      const file = curvesPath(opts.alias);
      const bytes = await mlflow.downloadArtifact(run.info.artifact_uri, file).catch(() => undefined);
      if (!bytes)
        return missing(
          `version ${version} has no curves against '${opts.alias}' (${file} in its run): run 'driftwood evaluate --version ${version}'`,
        );
      const parsed = parseCurves(bytes.toString('utf8'));
      if (!parsed) return missing(`${file} of version ${version} is not a ${CURVES_FORMAT} file`);
      return reply.header('cache-control', 'private, no-cache').send(parsed);
    },
  );
};

/** The curves file when it is one this API understands (an older or foreign file: null). */
export function parseCurves(text: string): { format: string; series: unknown[] } | null {
  try {
    const json = JSON.parse(text) as { format?: unknown; series?: unknown };
    if (json?.format !== CURVES_FORMAT || !Array.isArray(json.series)) return null;
    return json as { format: string; series: unknown[] };
  } catch {
    return null;
  }
}
