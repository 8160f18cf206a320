import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  buildChurnRows,
  openWarehouse,
  parseTransformState,
  transformRows,
  type Warehouse,
} from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { applyCalibration, CALIBRATION_FILE, parseCalibration } from '../../tasks/src/models/calibration.js';
import { compileGbdt, parseGbdtModel } from '../../tasks/src/models/gbdt.js';
import { GBDT_FILE } from '../../tasks/src/models/trained-model.js';
import { landAndIngest, mlflowClient, runCli, tempHome, uniqueName } from '../support/env.js';

/**
 * No train/serve skew: for 1,000 customers, the vector the running API computes from their raw
 * fields (sent as JSON, as clients send them) equals, bit for bit, the vector the training run's
 * own fitted transform (downloaded from MLflow) makes from the warehouse rows training used; and the
 * probability the API answers equals the one the registered model's files (trees, then calibration)
 * give that training vector.
 * The model is the gradient-boosted trees, whose splits compare raw floats against bin edges: a
 * vector off by one ulp at an edge would land in another leaf.
 */
describe('train/serve skew', () => {
  const home = tempHome('driftwood-skew-');
  const modelName = uniqueName('churn-skew');
  let app: FastifyInstance;
  let db: Warehouse;
  let train: { modelVersion: string; cutoff: string };

  beforeAll(async () => {
    const env = {
      DRIFTWOOD_HOME: home,
      MLFLOW_TRACKING_URI: inject('mlflowUri'),
      DRIFTWOOD_MODEL_NAME: modelName,
      DRIFTWOOD_EXPERIMENT: uniqueName('skew'),
      DRIFTWOOD_PII_KEY: 'skew-key-0123456789abcdef',
      LOG_LEVEL: 'warn',
    };
    await landAndIngest(env, { hours: 120, seed: 11, customers: 1300 });
    const r = await runCli(['train', '--dataset', 'churn', '--model', 'gbdt'], env);
    expect(r.code, r.stderr).toBe(0);
    train = JSON.parse(readFileSync(path.join(home, 'results', 'train.json'), 'utf8'));
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    app = await buildApp({
      openAccess: true,
      mlflow: mlflowClient(inject('mlflowUri')),
      modelName,
      alias: 'challenger',
    });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  it('computes the training vector and the trained probability exactly for 1,000 customers', async () => {
    const rows = (await buildChurnRows(db, Date.parse(train.cutoff), 48)).slice(0, 1000);
    expect(rows).toHaveLength(1000);

    const mlflow = mlflowClient(inject('mlflowUri'));
    const version = await mlflow.getModelVersion(modelName, train.modelVersion);
    const root = await mlflow.resolveVersionArtifacts(version);
    const state = parseTransformState(
      JSON.parse((await mlflow.downloadArtifact(root, 'transform.json')).toString()),
    );
    const width = state.outputs.length;
    const training = transformRows(
      state,
      rows.map((r) => r.features),
    );

    const trees = compileGbdt(
      parseGbdtModel(JSON.parse((await mlflow.downloadArtifact(root, GBDT_FILE)).toString())),
    );
    const calibration = parseCalibration(
      JSON.parse((await mlflow.downloadArtifact(root, CALIBRATION_FILE)).toString()),
    );
    let compared = 0;
    for (const [i, r] of rows.entries()) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/features',
        payload: { customer_id: r.customerId, ...r.features },
      });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json() as { model: { version: string }; outputs: string[]; vector: number[] };
      expect(body.model.version).toBe(train.modelVersion);
      expect(body.outputs).toEqual(state.outputs);
      const vector = training.subarray(i * width, (i + 1) * width);
      expect(body.vector).toEqual(Array.from(vector));
      const predicted = await app.inject({
        method: 'POST',
        url: '/v1/predict',
        payload: { customer_id: r.customerId, ...r.features },
      });
      expect(predicted.statusCode, predicted.body).toBe(200);
      expect(predicted.json().probability).toBe(applyCalibration(calibration, trees(vector)));
      compared++;
    }
    expect(compared).toBe(1000);
  });
});
