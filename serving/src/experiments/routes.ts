import {
  type ActionState,
  findExperiment,
  isDriftwoodError,
  listExperiments,
  type MlflowClient,
  type ModelVersion,
  ON_DECISION,
  type ResolvedVariant,
  type StoredExperiment,
  startExperimentRun,
  stopExperimentRun,
  validateExperiment,
} from '@driftwood/tasks';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { ModelLoader, ServedModel } from '../plugins/model-registry.js';
import { errorResponses } from '../schemas.js';
import { ExperimentRouter } from './router.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The running A/B experiments: which variant answers a customer (`routes/predict.ts`). */
    experiments: ExperimentRouter;
  }
}

export interface ExperimentsPluginOptions {
  mlflow: MlflowClient;
  /** The dataset a declaration without `dataset` is for. */
  defaultDataset?: string;
  /** How often the running experiments are re-read from MLflow; 0: only at start and on a refresh. */
  pollMs?: number;
  loader?: ModelLoader;
  /** The MLflow experiment holding the A/B runs (`driftwood-ab` by default). */
  mlflowExperiment?: string;
}

const bad = (message: string) => ({ error: 'bad_request', message });

const ACTION_STATES: (ActionState | null)[] = ['recorded', 'pending', 'promoted', 'refused', null];

/** The response of every experiment route (`view`), so the OpenAPI document says what comes back. */
const experimentSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    dataset: { type: 'string' },
    status: { type: 'string', enum: ['running', 'decided', 'stopped'] },
    serving_here: { type: 'boolean', description: 'whether this API process assigns its customers' },
    run_id: { type: 'string', description: "the experiment's MLflow run" },
    started_at: { type: 'string' },
    model_name: { type: 'string' },
    declaration: { type: 'object', additionalProperties: true },
    variants: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: true,
        properties: {
          name: { type: 'string' },
          model: { type: 'string' },
          version: { type: 'string' },
          allocation: { type: 'number' },
          served_here: { type: 'integer', description: 'customers this process answered with it' },
        },
      },
    },
    analysis: {
      type: ['object', 'null'],
      additionalProperties: true,
      description: 'the latest look: outcomes, comparisons and decision (null before the first)',
    },
    on_decision: {
      type: 'string',
      enum: ON_DECISION,
      description: 'what a promote decision does: record it, or move champion through the promotion gate',
    },
    action: {
      type: ['string', 'null'],
      enum: ACTION_STATES,
      description:
        'what became of a promote decision: recorded, pending, promoted or refused (null before one)',
    },
    action_detail: {
      type: ['string', 'null'],
      description: 'that outcome in a sentence: the version, and what the promotion gate said',
    },
  },
  required: [
    'name',
    'dataset',
    'status',
    'serving_here',
    'run_id',
    'variants',
    'analysis',
    'on_decision',
    'action',
    'action_detail',
  ],
} as const;

/** An experiment as the API reports it: the record, the latest analysis and this process's traffic. */
function view(e: StoredExperiment, router: ExperimentRouter) {
  const live = router.runningFor(e.declaration.dataset);
  const here = live?.record.run_id === e.run_id ? live : undefined;
  return {
    name: e.declaration.name,
    dataset: e.declaration.dataset,
    status: e.status,
    serving_here: here !== undefined,
    run_id: e.run_id,
    started_at: e.started_at,
    model_name: e.model_name,
    declaration: e.declaration,
    variants: e.variants.map((v) => ({
      ...v,
      served_here: here?.variants.find((x) => x.name === v.name)?.served ?? 0,
    })),
    analysis: e.analysis ?? null,
    on_decision: e.declaration.on_decision,
    action: e.action ?? null,
    action_detail: e.action_detail ?? null,
  };
}

/**
 * Declares, stops and reports A/B experiments (docs/experiments.md). A declaration is validated
 * (400 naming the field), its variants resolved to versions (pinned: an alias that moves later does
 * not change the experiment) and loaded here before the experiment is recorded in MLflow, so an
 * experiment never starts with a variant that cannot answer.
 */
export const experimentsPlugin = fp<ExperimentsPluginOptions>(
  async (app, opts) => {
    const router = new ExperimentRouter({
      mlflow: opts.mlflow,
      models: app.datasetModels,
      log: app.log,
      ...(opts.loader ? { loader: opts.loader } : {}),
      ...(opts.mlflowExperiment ? { mlflowExperiment: opts.mlflowExperiment } : {}),
    });
    app.decorate('experiments', router);
    const sync = () =>
      router
        .sync()
        .catch((err) =>
          app.log.warn(
            { err: (err as Error).message },
            'experiments: cannot read MLflow; the running ones go on',
          ),
        );
    // Not awaited: an MLflow that is slow or down must not hold up the API's start.
    void sync();
    app.peers?.onRefresh(() => void sync());
    let timer: NodeJS.Timeout | undefined;
    app.addHook('onReady', async () => {
      if (!opts.pollMs) return;
      timer = setInterval(() => void sync(), opts.pollMs);
      timer.unref();
    });
    app.addHook('onClose', async () => {
      if (timer) clearInterval(timer);
      router.close();
    });
    await app.register(experimentRoutes, { prefix: '/v1', ...opts, router });
  },
  { name: 'driftwood-experiments', dependencies: ['driftwood-model-registry'] },
);

const experimentRoutes: FastifyPluginAsync<ExperimentsPluginOptions & { router: ExperimentRouter }> = async (
  app,
  opts,
) => {
  const { mlflow, router } = opts;
  const mlflowExperiment = opts.mlflowExperiment;
  const nameParam = {
    type: 'object',
    properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } },
    required: ['name'],
  } as const;

  app.put(
    '/admin/experiments/:name',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Declare and start an A/B experiment (docs/experiments.md)',
        tags: ['experiments'],
        security: [{ basicAuth: [] }],
        params: nameParam,
        body: { type: 'object' },
        response: {
          201: experimentSchema,
          ...errorResponses(400, 401, 403, 409, 503),
        },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const body = req.body as Record<string, unknown>;
      if (body.name !== undefined && body.name !== name)
        return reply
          .status(400)
          .send(
            bad(
              `experiment name: the body says '${String(body.name)}', the path '${name}'; leave it out of the body`,
            ),
          );
      let declaration: ReturnType<typeof validateExperiment>;
      try {
        declaration = validateExperiment({ ...body, name }, opts.defaultDataset);
      } catch (err) {
        if (isDriftwoodError(err, 'USAGE')) return reply.status(400).send(bad(err.message));
        throw err;
      }
      const holder = app.datasetModels.get(declaration.dataset);
      if (!holder)
        return reply.status(400).send(
          bad(
            `experiment dataset: '${declaration.dataset}' is not served here (served: ${app.datasetModels
              .all()
              .map((h) => h.dataset)
              .join(', ')})`,
          ),
        );
      const busy = router.runningFor(declaration.dataset);
      if (busy)
        return reply.status(409).send({
          error: 'experiment_running',
          message: `experiment ${busy.record.declaration.name} is running on ${declaration.dataset}; stop it first (POST /v1/admin/experiments/${busy.record.declaration.name}/stop)`,
        });
      const variants: ResolvedVariant[] = [];
      const models = new Map<string, ServedModel>();
      try {
        for (const [i, v] of declaration.variants.entries()) {
          const field = `experiment variants[${i}].model`;
          let mv: ModelVersion | undefined;
          if (/^\d+$/.test(v.model))
            mv = await mlflow.getModelVersion(holder.modelName, v.model).catch(() => undefined);
          else mv = await mlflow.getVersionByAlias(holder.modelName, v.model);
          if (!mv)
            return reply
              .status(400)
              .send(
                bad(
                  `${field}: model ${holder.modelName} has no ${/^\d+$/.test(v.model) ? 'version' : 'alias'} '${v.model}'`,
                ),
              );
          try {
            models.set(v.name, await router.loadVariant(declaration.dataset, mv, v.model));
          } catch (err) {
            return reply
              .status(400)
              .send(
                bad(
                  `${field}: '${v.model}' (version ${mv.version}) cannot be served: ${(err as Error).message}`,
                ),
              );
          }
          variants.push({ ...v, version: mv.version });
        }
        const record = await startExperimentRun(
          mlflow,
          { declaration, model_name: holder.modelName, variants, started_at: new Date().toISOString() },
          mlflowExperiment,
        );
        router.activate(record, models);
        // The other processes of a cluster read it from MLflow now rather than at their next poll.
        app.peers?.announceRefresh();
        models.clear();
        return reply.status(201).send(view(record, router));
      } catch (err) {
        if (isDriftwoodError(err, 'USAGE'))
          return reply.status(409).send({ error: 'name_taken', message: err.message });
        throw err;
      } finally {
        for (const m of models.values()) m.model.dispose();
      }
    },
  );

  app.post(
    '/admin/experiments/:name/stop',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Stop an A/B experiment: its customers get the champion again',
        tags: ['experiments'],
        security: [{ basicAuth: [] }],
        params: nameParam,
        response: { 200: experimentSchema, ...errorResponses(401, 403, 404, 409, 503) },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const found = await findExperiment(mlflow, name, mlflowExperiment);
      if (!found)
        return reply.status(404).send({ error: 'not_found', message: `no experiment named '${name}'` });
      if (found.stored.status !== 'running')
        return reply
          .status(409)
          .send({ error: 'not_running', message: `experiment '${name}' is already ${found.stored.status}` });
      await stopExperimentRun(mlflow, found.stored.run_id);
      router.deactivate(name);
      app.peers?.announceRefresh();
      return view({ ...found.stored, status: 'stopped' }, router);
    },
  );

  app.get(
    '/experiments',
    {
      config: { role: 'predict' },
      schema: {
        summary: 'The latest A/B experiments: variants, traffic, outcome so far, decision and its action',
        tags: ['experiments'],
        security: [{ basicAuth: [] }],
        response: {
          200: {
            type: 'object',
            properties: { experiments: { type: 'array', items: experimentSchema } },
            required: ['experiments'],
          },
          ...errorResponses(401, 403, 503),
        },
      },
    },
    async () => {
      const all = await listExperiments(mlflow, {
        max: 20,
        ...(mlflowExperiment ? { mlflowExperiment } : {}),
      });
      // Reported with the traffic it took here; a decision recorded since the last sync then ends it
      // here at once.
      const experiments = all.map((e) => view(e, router));
      if (experiments.some((e) => e.status !== 'running' && e.serving_here)) await router.sync();
      return { experiments };
    },
  );

  app.get(
    '/experiments/:name',
    {
      config: { role: 'predict' },
      schema: {
        summary: 'One A/B experiment: variants, traffic, outcome so far, decision and its action',
        tags: ['experiments'],
        security: [{ basicAuth: [] }],
        params: nameParam,
        response: { 200: experimentSchema, ...errorResponses(401, 403, 404, 503) },
      },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const found = await findExperiment(mlflow, name, mlflowExperiment);
      if (!found)
        return reply.status(404).send({ error: 'not_found', message: `no experiment named '${name}'` });
      return view(found.stored, router);
    },
  );
};
