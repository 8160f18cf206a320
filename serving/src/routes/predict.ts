import type { FastifyPluginAsync } from 'fastify';
import { type FeatureLookup, FeatureStoreUnavailable } from '../features/by-id.js';
import type { ModelHolder, ServedModel } from '../plugins/model-registry.js';
import { type ChallengerMode, planRoute } from '../routing/canary.js';
import type { CanaryGuard } from '../routing/guard.js';
import {
  byIdPredictionSchema,
  errorResponses,
  featureRowSchema,
  idRequestSchema,
  modelRefSchema,
  predictionSchema,
} from '../schemas.js';
import { checkBounds, checkFeatureRow } from '../validate.js';
import { championOr503 } from './model-guard.js';

export interface PredictRoutesOptions {
  /** The dataset's models; the routes answer for it alone, with its own schema and canary guard. */
  models: ModelHolder;
  maxBatchRows: number;
  challengerMode: ChallengerMode;
  canaryPercent: number;
  guard: CanaryGuard;
  /** The dataset's features by id; absent, `POST …/predict/by-id` is not served. */
  byId?: FeatureLookup;
}

type Row = Record<string, unknown>;
type Source = { body: string; index: number; rows?: number };

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON text of the body, as received (prediction and webhook routes). */
    rawBody?: string;
  }
}

/** A challenger's score, or undefined when it throws or is not a probability. */
function tryScore(model: ServedModel, row: Row): number | undefined {
  try {
    const p = model.model.score(row);
    return Number.isFinite(p) && p >= 0 && p <= 1 ? p : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The label at the version's decision threshold (chosen on validation when it trained, tag
 * driftwood.threshold), not at 0.5: a class-weighted or calibrated churn model's probabilities for the
 * rare class sit far from 0.5. A version without the tag answers at 0.5.
 */
const labelAt = (m: ServedModel, probability: number): 0 | 1 =>
  probability >= (m.info.metrics.threshold ?? 0.5) ? 1 : 0;

export const predictRoutes: FastifyPluginAsync<PredictRoutesOptions> = async (app, opts) => {
  const { models } = opts;
  // The contract is pinned when the routes are built: with it the schema validates every field;
  // without it (no model at start) each row is checked against the model that is loaded.
  const contract = models.contract();
  const rowSchema = featureRowSchema(contract, models.idColumn);
  const check = (champion: ServedModel, row: Row) =>
    contract
      ? checkBounds(champion.model.transform, row)
      : checkFeatureRow(champion.model.transform, row, models.idColumn);

  // The JSON body parser is Fastify's own (same limits, errors and prototype-poisoning checks); it also
  // keeps the body's text, which the prediction log formats off the event loop instead of the row.
  const parseJson = app.getDefaultJsonParser(
    app.initialConfig.onProtoPoisoning ?? 'error',
    app.initialConfig.onConstructorPoisoning ?? 'error',
  );
  app.decorateRequest('rawBody', undefined);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    req.rawBody = body as string;
    parseJson(req, body as string, done);
  });

  /**
   * Scores one row with the model the canary plan picks, and shadows it when asked. In canary mode a
   * challenger that fails on a row is answered for by the champion, and the guard rolls the split
   * back once the challenger fails or slows down past its policy.
   */
  const canary = opts.challengerMode === 'canary';
  const predict = (champion: ServedModel, row: Row, requestId: string, source: Source | undefined) => {
    const challenger = models.challenger();
    const id = row[models.idColumn];
    const customerId = typeof id === 'string' ? id : undefined;
    // A customer in a running A/B experiment is answered by their variant's version (docs/experiments.md).
    const assigned = app.experiments.assign(models.dataset, customerId);
    if (assigned) {
      const p = tryScore(assigned.model, row);
      if (p !== undefined) {
        const label = labelAt(assigned.model, p);
        const experiment = { name: assigned.experiment, variant: assigned.variant };
        app.experiments.count(models.dataset, assigned.variant);
        app.recordPrediction({
          model: assigned.model,
          row,
          source,
          probability: p,
          label,
          served: true,
          requestId,
          experiment,
        });
        const { name, version, alias } = assigned.model.info;
        return { probability: p, label, model: { name, version, alias } };
      }
    }
    const plan = planRoute({
      mode: opts.challengerMode,
      percent: opts.canaryPercent,
      customerId,
      hasChallenger: challenger !== undefined && (!canary || opts.guard.allows(challenger.info.version)),
    });
    let served = champion;
    let probability: number | undefined;
    if (plan.serve === 'challenger' && challenger) {
      const t0 = performance.now();
      probability = tryScore(challenger, row);
      const rollback = opts.guard.record('challenger', performance.now() - t0, probability !== undefined);
      if (rollback) {
        app.metrics.canaryRollbacks.inc({ dataset: models.dataset, version: challenger.info.version });
        app.log.error(
          { dataset: models.dataset, version: challenger.info.version, reason: rollback },
          'canary rolled back: all traffic goes to the champion until the challenger alias moves',
        );
      }
      if (probability !== undefined) served = challenger;
    }
    if (probability === undefined) {
      const t0 = canary ? performance.now() : 0;
      probability = champion.model.score(row);
      if (canary && challenger) opts.guard.record('champion', performance.now() - t0, true);
    }
    if (!Number.isFinite(probability))
      throw new Error(`model ${served.info.version} returned a non-finite probability`);
    const label = labelAt(served, probability);
    app.recordPrediction({ model: served, row, source, probability, label, served: true, requestId });
    if (plan.shadow && challenger) {
      // Off the response path: the caller never waits for, or sees, the challenger's answer.
      setImmediate(() => {
        try {
          const p = challenger.model.score(row);
          app.recordPrediction({
            model: challenger,
            row,
            source,
            probability: p,
            label: labelAt(challenger, p),
            served: false,
            requestId,
          });
        } catch (err) {
          app.log.error({ err, version: challenger.info.version }, 'shadow prediction failed');
        }
      });
    }
    const { name, version, alias } = served.info;
    return { probability, label, model: { name, version, alias } };
  };

  app.post(
    '/predict',
    {
      config: { role: 'predict' },
      schema: {
        summary: `Probability of the positive class for one ${models.dataset || 'default-dataset'} row`,
        tags: ['predict'],
        security: [{ basicAuth: [] }],
        body: rowSchema,
        response: { 200: predictionSchema, ...errorResponses(400, 401, 403, 413, 415, 429, 500, 503) },
      },
    },
    async (req, reply) => {
      const champion = championOr503(models, reply);
      if (!champion) return reply;
      const row = req.body as Row;
      const problem = check(champion, row);
      if (problem) return reply.status(400).send({ error: 'bad_request', message: problem });
      return predict(
        champion,
        row,
        req.id,
        req.rawBody === undefined ? undefined : { body: req.rawBody, index: -1 },
      );
    },
  );

  /**
   * Scores one id: its features as of now from the warehouse, by the dataset's own point-in-time
   * builder (kept a short while per id), then the same path as `/predict`. The row comes from the
   * warehouse, not the client, so it is not held to the training ranges: a value past them is drift
   * for the monitor to see, not a bad request.
   */
  const { byId } = opts;
  if (byId)
    app.post(
      '/predict/by-id',
      {
        config: { role: 'predict' },
        schema: {
          summary: `Probability of the positive class for one ${models.dataset || 'default-dataset'} ${models.idColumn}, its features computed from the warehouse as of now`,
          tags: ['predict'],
          security: [{ basicAuth: [] }],
          body: idRequestSchema(models.idColumn),
          response: {
            200: byIdPredictionSchema,
            ...errorResponses(400, 401, 403, 404, 413, 415, 429, 500, 503),
          },
        },
      },
      async (req, reply) => {
        const champion = championOr503(models, reply);
        if (!champion) return reply;
        const id = (req.body as Record<string, string>)[models.idColumn] as string;
        let found: Awaited<ReturnType<FeatureLookup['features']>>;
        try {
          found = await byId.features(id);
        } catch (err) {
          if (!(err instanceof FeatureStoreUnavailable)) throw err;
          return reply
            .status(503)
            .header('retry-after', '5')
            .send({ error: 'warehouse_unavailable', message: err.message });
        }
        if (!found)
          return reply.status(404).send({
            error: 'unknown_id',
            message: `${models.idColumn} '${id}' has no ${models.dataset} row as of ${new Date(byId.now()).toISOString()}: not in the warehouse, or not in the dataset's rows at that time`,
          });
        const row: Row = { ...found.features, [models.idColumn]: id };
        return { ...predict(champion, row, req.id, undefined), as_of: new Date(found.asOf).toISOString() };
      },
    );

  app.post(
    '/predict/batch',
    {
      config: { role: 'predict' },
      schema: {
        summary: `Probabilities for up to ${opts.maxBatchRows} ${models.dataset || 'default-dataset'} rows`,
        tags: ['predict'],
        security: [{ basicAuth: [] }],
        body: {
          type: 'object',
          properties: {
            rows: { type: 'array', minItems: 1, maxItems: opts.maxBatchRows, items: rowSchema },
          },
          required: ['rows'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              count: { type: 'integer' },
              predictions: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    probability: { type: 'number' },
                    label: { type: 'integer' },
                    model: modelRefSchema,
                  },
                },
              },
            },
          },
          ...errorResponses(400, 401, 403, 413, 415, 429, 500, 503),
        },
      },
    },
    async (req, reply) => {
      const champion = championOr503(models, reply);
      if (!champion) return reply;
      const rows = (req.body as { rows: Row[] }).rows;
      for (let i = 0; i < rows.length; i++) {
        const problem = check(champion, rows[i] as Row);
        if (problem)
          return reply
            .status(400)
            .send({ error: 'bad_request', message: problem.replace(/^body\./, `body.rows.${i}.`) });
      }
      const body = req.rawBody;
      const predictions = rows.map((row, index) =>
        predict(champion, row, req.id, body === undefined ? undefined : { body, index, rows: rows.length }),
      );
      return { count: predictions.length, predictions };
    },
  );
};
