import type { MlflowClient, Warehouse } from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import type { TrainResult } from '../../tasks/src/train/index.js';
import { mlflowClient, seededWarehouse, uniqueName } from '../support/env.js';
import { promotionSteps, registerCorruptCopy } from '../support/promotion.js';
import { sampleCustomer } from '../support/serving-model.js';

const PREDICTOR = `Basic ${Buffer.from('predictor:predictor-password-1').toString('base64')}`;

/**
 * Issue 20, problem 6: a version whose weight for one one-hot column is +Inf passed the API's
 * warm-up (`score({})` answered 1.0) and, moved straight to champion, answered 500 to 12 of 16
 * predictions. Now the API re-scores the holdout sample training saved with the version and refuses
 * it, whatever moved the alias: the previous version keeps answering, and nothing answers 500.
 */
describe('a corrupt version moved straight to champion', () => {
  let db: Warehouse;
  let mlflow: MlflowClient;
  let modelName: string;
  let app: FastifyInstance;
  let good: TrainResult;

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-corrupt');
    ({ db } = await seededWarehouse({ hours: 168, seed: 13, customers: 700 }));
    const steps = promotionSteps(mlflow, db, { modelName, experiment: uniqueName('exp-corrupt') });
    good = await steps.train();
    await mlflow.setAlias(modelName, 'champion', good.modelVersion);
    const credentials = parseCredentials(`predictor:predict:${await hashPassword('predictor-password-1')}`);
    app = await buildApp({ mlflow, modelName, alias: 'champion', credentials, pollMs: 0 });
    await app.ready();
  }, 300_000);

  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  /** Customers across every plan and region the served transform knows. */
  const customers = () => {
    const t = app.models.champion()?.model.transform;
    const plans = t?.categorical.find((c) => c.name === 'plan')?.categories ?? [];
    const regions = t?.categorical.find((c) => c.name === 'region')?.categories ?? [];
    return plans.flatMap((plan) => regions.map((region) => ({ ...sampleCustomer, plan, region })));
  };

  it('a freshly trained version reproduces its own holdout sample and serves', () => {
    expect(app.models.champion()?.info.version).toBe(good.modelVersion);
  });

  it('refuses a +Inf one-hot weight: the previous version keeps serving, 0 predictions answer 500', async () => {
    const bad = await registerCorruptCopy(
      mlflow,
      { modelName, version: good.modelVersion, experimentId: good.experimentId, runId: good.runId },
      'inf_onehot_weight',
    );
    await mlflow.setAlias(modelName, 'champion', bad);
    const [outcome] = await app.models.refresh();
    expect(outcome).toMatchObject({ action: 'load', version: bad });
    expect(outcome?.error).toMatch(
      new RegExp(`version ${bad} cannot score its own holdout: \\d+ of \\d+ holdout sample rows fail`),
    );
    expect(app.models.champion()?.info.version).toBe(good.modelVersion);
    const rows = customers();
    expect(rows.length).toBeGreaterThanOrEqual(4);
    const codes = await Promise.all(
      rows.map(
        async (row) =>
          (
            await app.inject({
              method: 'POST',
              url: '/v1/predict',
              payload: row,
              headers: { authorization: PREDICTOR },
            })
          ).statusCode,
      ),
    );
    expect(codes.filter((c) => c !== 200)).toEqual([]);
    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain(
      `driftwood_model_loads_total{dataset="${modelName}",alias="champion",version="${bad}",outcome="refused"} 1`,
    );
  });
});
