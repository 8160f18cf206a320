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
import { landAndIngest, mlflowClient, runCli, tempHome, uniqueName } from '../support/env.js';

/**
 * No train/serve skew: for 1,000 customers, the vector the running API computes from their raw
 * fields (sent as JSON, as clients send them) equals, bit for bit, the vector the training run's
 * own fitted transform (downloaded from MLflow) makes from the warehouse rows training used.
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
    const r = await runCli(['train', '--dataset', 'churn'], env);
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

  it('computes the training vector exactly for 1,000 customers', async () => {
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
      expect(body.vector).toEqual(Array.from(training.subarray(i * width, (i + 1) * width)));
      compared++;
    }
    expect(compared).toBe(1000);
  });
});
